package walkthrough

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// TextOptions configure the terminal rendering.
type TextOptions struct {
	// Color adds ANSI colours; set it only when writing to a terminal.
	Color bool
	// Width is the wrap width; 0 means 100 columns.
	Width int
}

// ANSI SGR sequences.
const (
	ansiReset   = "\x1b[0m"
	ansiBold    = "\x1b[1m"
	ansiDim     = "\x1b[2m"
	ansiRed     = "\x1b[31m"
	ansiGreen   = "\x1b[32m"
	ansiYellow  = "\x1b[33m"
	ansiBlue    = "\x1b[34m"
	ansiMagenta = "\x1b[35m"
	ansiCyan    = "\x1b[36m"
)

// textWriter renders a story as text.
type textWriter struct {
	o TextOptions
	b strings.Builder
}

func newTextWriter(o TextOptions) *textWriter {
	if o.Width <= 0 {
		o.Width = 100
	}
	return &textWriter{o: o}
}

// c wraps s in a colour when colours are on.
func (t *textWriter) c(style, s string) string {
	if !t.o.Color || s == "" || style == "" {
		return s
	}
	return style + s + ansiReset
}

// line writes one line.
func (t *textWriter) line(s string) {
	t.b.WriteString(s)
	t.b.WriteByte('\n')
}

// para writes text wrapped at the width, every line indented by indent, the first one starting with first
// (which replaces the indent and may be longer or shorter).
func (t *textWriter) para(indent int, first, text string, style string) {
	pad := strings.Repeat(" ", indent)
	if first == "" {
		first = pad
	}
	width := t.o.Width - indent
	if width < 30 {
		width = 30
	}
	lines := wrapWords(text, width)
	for i, l := range lines {
		lead := pad
		if i == 0 {
			lead = first
		}
		t.line(lead + t.c(style, l))
	}
}

// wrapWords splits text into lines of at most width runes (longer words stay whole).
func wrapWords(text string, width int) []string {
	var lines []string
	var cur strings.Builder
	n := 0
	for _, w := range strings.Fields(text) {
		wl := utf8.RuneCountInString(w)
		if n > 0 && n+1+wl > width {
			lines = append(lines, cur.String())
			cur.Reset()
			n = 0
		}
		if n > 0 {
			cur.WriteByte(' ')
			n++
		}
		cur.WriteString(w)
		n += wl
	}
	if n > 0 || len(lines) == 0 {
		lines = append(lines, cur.String())
	}
	return lines
}

// WriteText renders the whole story for a terminal.
func WriteText(w io.Writer, st *Story, o TextOptions) error {
	t := newTextWriter(o)
	t.intro(st)
	for i := range st.Steps {
		t.step(&st.Steps[i], i+1, len(st.Steps))
	}
	t.outro(st)
	_, err := io.WriteString(w, t.b.String())
	return err
}

// intro writes the title and the intro paragraphs.
func (t *textWriter) intro(st *Story) {
	t.line(t.c(ansiBold, st.Title))
	t.line("")
	for _, p := range st.Intro {
		t.para(0, "", p, "")
		t.line("")
	}
}

// checkMark is the mark and colour of a check result.
func checkMark(result string) (string, string) {
	switch result {
	case CheckPass:
		return "✓", ansiGreen
	case CheckFail:
		return "✗", ansiRed
	case CheckSkip:
		return "–", ansiDim
	}
	return "•", ansiDim
}

// outro writes the diagnosis of a failure story, then the closing paragraphs.
func (t *textWriter) outro(st *Story) {
	if f := st.Failure; f != nil {
		t.failure(st, f)
	}
	for _, p := range st.Outro {
		t.para(0, "", p, "")
		t.line("")
	}
}

// failure writes the diagnosis of a failure story.
func (t *textWriter) failure(st *Story, f *Failure) {
	head := "━━ What went wrong "
	if n := t.o.Width - utf8.RuneCountInString(head); n > 0 {
		head += strings.Repeat("━", n)
	}
	t.line(t.c(ansiBold+ansiRed, head))
	for _, r := range failureRows(st, f) {
		t.line("  " + t.c(ansiBold, r.label))
		for _, v := range r.values {
			first := "    "
			if len(r.values) > 1 {
				first = "    • "
			}
			t.para(utf8.RuneCountInString(first), first, v, "")
		}
	}
	t.line("")
}

// failureRow is one labelled part of a diagnosis.
type failureRow struct {
	label  string
	values []string
}

// failureRows is the diagnosis as the three renderings show it.
func failureRows(st *Story, f *Failure) []failureRow {
	var rows []failureRow
	add := func(label string, values ...string) {
		var vs []string
		for _, v := range values {
			if v != "" {
				vs = append(vs, v)
			}
		}
		if len(vs) > 0 {
			rows = append(rows, failureRow{label, vs})
		}
	}
	where := ""
	if s := st.Step(f.StepID); s != nil {
		where = fmt.Sprintf("step %d (%s)", slicesIndex(st, f.StepID)+1, stepLabelText(s))
	}
	check := f.Check
	if f.Stage != "" {
		check = "the " + f.By + "'s check " + f.Stage + ": " + f.Check
	} else if f.By != "" {
		check = "(" + f.By + ") " + f.Check
	}
	if where != "" {
		check += ", at " + where
	}
	add("The check that failed", check)
	if f.Detail != "" {
		add("What the "+f.By+" said", f.Detail)
	}
	if f.Code != 0 {
		e := errorName(f.Code)
		if f.EText != "" {
			e += fmt.Sprintf(", e-text %q", f.EText)
		}
		add("The KRB-ERROR that came back", e)
	} else {
		add("The KRB-ERROR that came back", "none: nothing on the wire was refused")
	}
	add("What MIT krb5's tools print", f.MIT...)
	add("What kerbkit's tools printed in this run", f.Ours...)
	add("What the check protects against", f.Protects)
	add("How to fix it", f.Fix...)
	return rows
}

// slicesIndex is the index of the step with the ID, or -1.
func slicesIndex(st *Story, id string) int {
	for i := range st.Steps {
		if st.Steps[i].ID == id {
			return i
		}
	}
	return -1
}

// stepLabelText names a step briefly: "TGS-REQ, C D".
func stepLabelText(s *Step) string {
	name := s.Message
	if name == "" {
		name = s.Title
	}
	if len(s.Letters) > 0 && s.Letters[0] != "pre" {
		name += ", " + strings.Join(s.Letters, " ")
	}
	return name
}

// stepHeading is "4/10  A B  AS-REP  AS → client".
func stepHeading(s *Step, n, total int) (num, letters, msg, route string) {
	num = strconv.Itoa(n)
	if total > 0 {
		num += "/" + strconv.Itoa(total)
	}
	letters = strings.Join(s.Letters, " ")
	msg = s.Message
	if msg == "" {
		msg = "local"
	}
	route = s.From + " → " + s.To
	if s.From == s.To {
		route = "on the " + s.From
	}
	return
}

// transportLine says how the message travelled.
func transportLine(s *Step) string {
	switch s.Transport {
	case "local", "":
		if s.Framing != "" {
			return s.Framing
		}
		if s.From == ActorAttacker {
			return "done by the attacker on its own machine, offline; nothing is sent, nobody can notice"
		}
		if s.From != "" && s.From != ActorClient {
			return "done by the " + s.From + "; nothing is sent"
		}
		return "computed on the client; nothing is sent"
	}
	var b strings.Builder
	b.WriteString(s.Transport)
	if s.Addr != "" {
		b.WriteString(" " + s.Addr)
	}
	if s.Size > 0 {
		b.WriteString(", " + bytesText(s.Size))
		if s.WireSize > 0 && s.WireSize != s.Size {
			fmt.Fprintf(&b, " (%s on the wire)", bytesText(s.WireSize))
		}
	}
	if s.Framing != "" {
		b.WriteString("; " + s.Framing)
	}
	return b.String()
}

// step writes one step.
func (t *textWriter) step(s *Step, n, total int) {
	num, letters, msg, route := stepHeading(s, n, total)
	head := "━━ " + num + "  "
	if letters != "" {
		head += t.c(ansiBold+ansiYellow, letters) + "  "
	}
	head += t.c(ansiBold+ansiCyan, msg) + "  " + route + " "
	visible := utf8.RuneCountInString(stripANSI(head))
	if visible < t.o.Width {
		head += strings.Repeat("━", t.o.Width-visible)
	}
	t.line(head)
	t.para(0, "", s.Title, ansiBold)
	t.para(0, "", transportLine(s), ansiDim)
	t.line("")
	t.para(2, "", s.Summary, "")
	if len(s.Fields) > 0 {
		t.line("")
		t.line("  " + t.c(ansiBold, "Fields"))
		t.fields(s.Fields, 4)
	}
	if len(s.Parts) > 0 {
		t.line("")
		t.line("  " + t.c(ansiBold, "Encrypted parts"))
		for i := range s.Parts {
			t.part(&s.Parts[i])
		}
	}
	if len(s.Checks) > 0 {
		by := ""
		for _, c := range s.Checks {
			if c.By != by {
				by = c.By
				t.line("")
				t.line("  " + t.c(ansiBold, byHeading(by)))
			}
			mark, style := checkMark(c.Result)
			text := c.Text
			if c.Stage != "" {
				text = c.Stage + ": " + text
			}
			if c.Result == CheckSkip {
				text = "(not reached) " + text
			}
			t.para(6, "    "+t.c(style, mark)+" ", text, "")
			if c.Detail != "" {
				t.para(8, "      → ", c.Detail, ansiRed)
			}
		}
	}
	if len(s.Notes) > 0 {
		t.line("")
		for _, nt := range s.Notes {
			label := fmt.Sprintf("  %-8s ", nt.Kind)
			t.para(11, t.c(ansiMagenta, label), nt.Text, "")
		}
	}
	t.line("")
}

// part writes an encrypted part.
func (t *textWriter) part(p *Part) {
	letter := p.Letter
	if letter == "" {
		letter = "-"
	}
	t.para(9, "    "+t.c(ansiBold+ansiYellow, fmt.Sprintf("%-4s", letter))+" ", p.Name+": "+p.What, ansiBold)
	k := p.Key
	t.para(16, "         key    ", k.Owner, "")
	kv := k.EtypeName
	if k.KVNO != 0 {
		kv += ", kvno " + strconv.Itoa(k.KVNO)
	}
	kv += fmt.Sprintf(", key usage %d (%s)", k.Usage, k.UsageName)
	if k.ChecksumUsage != 0 {
		kv += fmt.Sprintf("; inside, a checksum with key usage %d (%s)", k.ChecksumUsage, usageName(k.ChecksumUsage))
	}
	t.para(16, "", kv, "")
	if k.Value != "" {
		t.para(16, "", "value "+k.Value, ansiDim)
	}
	if p.Opened {
		t.line("         " + partSize(p) + "; " + openedWord(p) + ":")
		t.fields(p.Fields, 11)
	} else {
		t.para(9, "         ", partSize(p)+", not opened: "+p.Reason, ansiMagenta)
	}
}

// partSize says how big a part is: "213 bytes of ciphertext", or "12-byte checksum".
func partSize(p *Part) string {
	if p.Checksum {
		return fmt.Sprintf("%d-byte checksum", p.CipherSize)
	}
	return bytesText(p.CipherSize) + " of ciphertext"
}

// openedWord is what was done to an opened part.
func openedWord(p *Part) string {
	if p.Checksum {
		return "verified"
	}
	return "decrypted"
}

// byHeading is the heading of a group of checks.
func byHeading(by string) string {
	if by == ActorWalkthrough {
		return "Cross-checked by the walkthrough, which holds every key"
	}
	return "Checked by the " + by
}

// fields writes a field tree with aligned values.
func (t *textWriter) fields(fs []Field, indent int) {
	width := 0
	for _, f := range fs {
		if n := utf8.RuneCountInString(f.Name); n > width && n <= 24 {
			width = n
		}
	}
	pad := strings.Repeat(" ", indent)
	for _, f := range fs {
		name := f.Name
		n := utf8.RuneCountInString(name)
		gap := width - n
		if gap < 0 {
			gap = 0
		}
		lead := pad + t.c(ansiBlue, name) + strings.Repeat(" ", gap+2)
		col := indent + max(n, width) + 2
		if f.Value == "" {
			t.line(strings.TrimRight(pad+t.c(ansiBlue, name), " "))
		} else {
			t.para(col, lead, f.Value, "")
		}
		if len(f.Fields) > 0 {
			t.fields(f.Fields, indent+2)
		}
	}
}

// stripANSI removes SGR sequences, for measuring.
func stripANSI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b {
			for i < len(s) && s[i] != 'm' {
				i++
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// StepText renders one step (n of total; total 0 for unknown) as text.
func StepText(s *Step, n, total int, o TextOptions) string {
	t := newTextWriter(o)
	t.step(s, n, total)
	return t.b.String()
}

// IntroText renders the story's title and intro.
func IntroText(st *Story, o TextOptions) string {
	t := newTextWriter(o)
	t.intro(st)
	return t.b.String()
}

// OutroText renders the story's closing paragraphs.
func OutroText(st *Story, o TextOptions) string {
	t := newTextWriter(o)
	t.outro(st)
	return t.b.String()
}
