package walkthrough

import (
	"fmt"
	"io"
	"strings"
)

// MarkdownOptions configure WriteMarkdown.
type MarkdownOptions struct {
	// Preface is Markdown written after the title and before the story's intro.
	Preface string
}

// WriteMarkdown renders the story as a Markdown document (docs/walkthrough.md): the same content as the text
// and HTML renderings, with a table of the messages and one section per step.
func WriteMarkdown(w io.Writer, st *Story, o MarkdownOptions) error {
	var b strings.Builder
	m := &mdWriter{b: &b}
	m.doc(st, o)
	_, err := io.WriteString(w, b.String())
	return err
}

// mdWriter builds a Markdown document.
type mdWriter struct{ b *strings.Builder }

func (m *mdWriter) w(format string, args ...any) { fmt.Fprintf(m.b, format, args...) }

// mdEsc escapes the characters that would start Markdown markup inside running text.
func mdEsc(s string) string {
	r := strings.NewReplacer("\\", "\\\\", "*", "\\*", "_", "\\_", "`", "\\`", "<", "&lt;", ">", "&gt;", "|", "\\|", "[", "\\[", "]", "\\]")
	return r.Replace(s)
}

// mdCode puts s in a code span.
func mdCode(s string) string {
	if strings.Contains(s, "`") {
		return "`` " + s + " ``"
	}
	return "`" + s + "`"
}

// anchor is the GitHub-style heading anchor of a step section.
func anchorOf(n int, s *Step) string {
	return fmt.Sprintf("step-%d-%s", n, s.ID)
}

// doc writes the document.
func (m *mdWriter) doc(st *Story, o MarkdownOptions) {
	m.w("# %s\n\n", mdEsc(st.Title))
	if o.Preface != "" {
		m.w("%s\n\n", strings.TrimSpace(o.Preface))
	}
	for _, p := range st.Intro {
		m.w("%s\n\n", mdEsc(p))
	}
	m.w("| # | letters | message | from → to | transport | size | key usages |\n|---|---|---|---|---|---|---|\n")
	for i := range st.Steps {
		s := &st.Steps[i]
		msg := s.Message
		if msg == "" {
			msg = "password to key"
		}
		var usages []string
		for _, p := range s.Parts {
			u := fmt.Sprint(p.Key.Usage)
			if p.Key.ChecksumUsage != 0 {
				u += fmt.Sprintf(" (checksum %d)", p.Key.ChecksumUsage)
			}
			usages = append(usages, u)
		}
		size := ""
		if s.Size > 0 {
			size = bytesText(s.Size)
		}
		m.w("| %d | %s | [%s](#%s) | %s → %s | %s | %s | %s |\n", i+1, strings.Join(s.Letters, " "), mdEsc(msg), anchorOf(i+1, s),
			s.From, s.To, s.Transport, size, strings.Join(usages, ", "))
	}
	m.w("\n")
	for i := range st.Steps {
		m.step(&st.Steps[i], i+1)
	}
	if f := st.Failure; f != nil {
		m.w("## What went wrong\n\n")
		for _, r := range failureRows(st, f) {
			m.w("**%s**\n\n", r.label)
			for _, v := range r.values {
				if len(r.values) > 1 {
					m.w("- %s\n", mdEsc(v))
				} else {
					m.w("%s\n", mdEsc(v))
				}
			}
			m.w("\n")
		}
	}
	for _, p := range st.Outro {
		m.w("%s\n\n", mdEsc(p))
	}
}

// step writes one step section.
func (m *mdWriter) step(s *Step, n int) {
	m.w("<a id=\"%s\"></a>\n\n", anchorOf(n, s))
	letters := ""
	if len(s.Letters) > 0 {
		letters = " [" + strings.Join(s.Letters, " ") + "]"
	}
	m.w("## %d.%s %s\n\n", n, letters, mdEsc(s.Title))
	route := s.From + " → " + s.To
	if s.From == s.To {
		route = "on the " + s.From
	}
	msg := s.Message
	if msg == "" {
		msg = "local step"
	}
	m.w("**%s**, %s: %s\n\n", mdEsc(msg), route, mdEsc(transportLine(s)))
	m.w("%s\n\n", mdEsc(s.Summary))
	if len(s.Fields) > 0 {
		m.w("**Fields**\n\n")
		m.fields(s.Fields, 0)
		m.w("\n")
	}
	if len(s.Parts) > 0 {
		m.w("**Encrypted parts**\n\n")
		for i := range s.Parts {
			m.part(&s.Parts[i])
		}
		m.w("\n")
	}
	by := ""
	for _, c := range s.Checks {
		if c.By != by {
			if by != "" {
				m.w("\n")
			}
			by = c.By
			m.w("**%s**\n\n", byHeading(by))
		}
		mark, _ := checkMark(c.Result)
		text := mdEsc(c.Text)
		if c.Stage != "" {
			text = mdCode(c.Stage) + ": " + text
		}
		if c.Result == CheckSkip {
			text = "(not reached) " + text
		}
		m.w("- %s %s\n", mark, text)
		if c.Detail != "" {
			m.w("  - → %s\n", mdEsc(c.Detail))
		}
	}
	if len(s.Checks) > 0 {
		m.w("\n")
	}
	for i, nt := range s.Notes {
		if i > 0 {
			m.w(">\n")
		}
		m.w("> **%s** %s\n", noteLabel(nt.Kind), mdEsc(nt.Text))
	}
	if len(s.Notes) > 0 {
		m.w("\n")
	}
}

// part writes an encrypted part as a list item.
func (m *mdWriter) part(p *Part) {
	letter := ""
	if p.Letter != "" {
		letter = "**" + p.Letter + "** "
	}
	m.w("- %s%s: %s\n", letter, mdEsc(p.Name), mdEsc(p.What))
	k := p.Key
	kv := mdEsc(k.EtypeName)
	if k.KVNO != 0 {
		kv += fmt.Sprintf(", kvno %d", k.KVNO)
	}
	m.w("  - key: %s; %s; key usage %d (%s)\n", mdEsc(k.Owner), kv, k.Usage, mdEsc(k.UsageName))
	if k.ChecksumUsage != 0 {
		m.w("  - the same key makes the checksum inside: key usage %d (%s)\n", k.ChecksumUsage, mdEsc(usageName(k.ChecksumUsage)))
	}
	if k.Value != "" {
		m.w("  - key value: %s\n", mdCode(k.Value))
	}
	if p.Opened {
		m.w("  - %s, %s:\n", partSize(p), openedWord(p))
		m.fields(p.Fields, 2)
	} else {
		m.w("  - %s, not opened: %s\n", partSize(p), mdEsc(p.Reason))
	}
}

// fields writes a field tree as nested lists.
func (m *mdWriter) fields(fs []Field, depth int) {
	pad := strings.Repeat("  ", depth)
	for _, f := range fs {
		if f.Value == "" {
			m.w("%s- %s\n", pad, mdCode(f.Name))
		} else {
			m.w("%s- %s: %s\n", pad, mdCode(f.Name), mdEsc(f.Value))
		}
		if len(f.Fields) > 0 {
			m.fields(f.Fields, depth+1)
		}
	}
}
