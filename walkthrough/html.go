package walkthrough

import (
	"fmt"
	"html"
	"io"
	"strconv"
	"strings"
)

// WriteHTML renders the story as one self-contained HTML page: inline CSS, an inline SVG sequence diagram of the
// client, the AS, the TGS and the service with every message, and a <details> section per message with its
// fields, encrypted parts and keys, checks and notes. The page loads nothing: no scripts, fonts or styles from
// anywhere, and its only links are to its own sections.
func WriteHTML(w io.Writer, st *Story) error {
	var b strings.Builder
	h := &htmlWriter{b: &b}
	h.page(st)
	_, err := io.WriteString(w, b.String())
	return err
}

// htmlWriter builds the page.
type htmlWriter struct{ b *strings.Builder }

// esc escapes text for HTML content and attribute values.
func esc(s string) string { return html.EscapeString(s) }

func (h *htmlWriter) w(format string, args ...any) { fmt.Fprintf(h.b, format, args...) }
func (h *htmlWriter) s(s string)                   { h.b.WriteString(s) }

// pageCSS is the page's only style sheet. Fonts are the system's own.
const pageCSS = `
:root{--bg:#f4f5f9;--card:#fff;--ink:#1d2433;--mute:#5c6578;--line:#d9dce6;--req:#2f6fde;--rep:#1f9d6b;--err:#d64545;--loc:#c77d12;--after:#8a8fa0;--acc:#7047c2}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
header{background:linear-gradient(120deg,#1e2a4a,#3a2f6b);color:#fff;padding:26px 40px 22px}
header h1{margin:0 0 6px;font-size:28px;font-weight:650;letter-spacing:.2px}
header .meta{display:flex;flex-wrap:wrap;gap:8px 22px;font-size:13.5px;opacity:.92}
header .meta b{font-weight:600;color:#c9d6ff}
main{max-width:1180px;margin:0 auto;padding:22px 28px 60px}
.card{background:var(--card);border:1px solid var(--line);border-radius:12px;box-shadow:0 1px 2px rgba(20,30,60,.05)}
figure.diagram{margin:0 0 18px;padding:14px 14px 6px}
figure.diagram svg{display:block;width:100%;height:auto}
figcaption{color:var(--mute);font-size:13px;text-align:center;padding:4px 0 6px}
.intro{padding:6px 24px;margin-bottom:18px;color:#333a4a}
.intro p{margin:12px 0}
details.step{margin:0 0 10px;overflow:hidden}
details.step>summary{list-style:none;cursor:pointer;display:flex;align-items:center;gap:12px;padding:11px 16px}
details.step>summary::-webkit-details-marker{display:none}
details.step>summary:hover{background:#f8f9fd}
details.step[open]>summary{border-bottom:1px solid var(--line);background:#f8f9fd}
.num{flex:none;width:28px;height:28px;border-radius:50%;background:#e8ebf4;color:var(--mute);font-weight:600;font-size:13px;display:flex;align-items:center;justify-content:center}
.letters{flex:none;display:flex;gap:4px;min-width:64px}
.letter{display:inline-flex;align-items:center;justify-content:center;min-width:24px;height:24px;padding:0 6px;border-radius:7px;background:#fff2d6;color:#8a5a00;font-weight:700;font-size:13px;border:1px solid #f0d49a}
.msg{flex:none;font-weight:650;min-width:104px}
.msg.req{color:var(--req)}.msg.rep{color:var(--rep)}.msg.err{color:var(--err)}.msg.loc{color:var(--loc)}.msg.after{color:var(--after)}
.route{flex:none;color:var(--mute);font-size:13px;min-width:120px}
.title{flex:1;color:#2b3345}
.size{flex:none;color:var(--mute);font-size:12.5px;font-variant-numeric:tabular-nums}
.body{padding:8px 22px 16px}
.transport{color:var(--mute);font-size:13px;margin:6px 0}
.summary{margin:8px 0 4px}
h4{margin:16px 0 6px;font-size:13px;text-transform:uppercase;letter-spacing:.6px;color:var(--mute)}
ul.fields{list-style:none;margin:0;padding:0 0 0 2px;font-size:13.5px}
ul.fields ul.fields{padding-left:18px;border-left:1px dotted var(--line);margin-left:4px}
ul.fields li{padding:1px 0}
.fn{color:#3d4fa3;font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:12.5px;margin-right:8px}
.fv{word-break:break-word}
.part{border:1px solid var(--line);border-radius:10px;margin:8px 0;padding:10px 14px}
.part.opened{border-left:4px solid var(--rep)}.part.sealed{border-left:4px solid var(--acc);background:#faf8ff}
.part-head{font-weight:600;margin-bottom:6px}
.part-head .letter{margin-right:8px}
table.key{border-collapse:collapse;font-size:13px;margin:4px 0 8px}
table.key th{text-align:left;color:var(--mute);font-weight:500;padding:1px 12px 1px 0;vertical-align:top}
table.key td{padding:1px 0}
code,.hex{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:12px;word-break:break-all}
.dec{color:var(--rep);font-size:11.5px;text-transform:uppercase;letter-spacing:.5px;margin:2px 0 4px;font-weight:600}
.sealed-note{color:#5b3fa0;font-style:italic}
ul.checks{list-style:none;padding:0;margin:0}
ul.checks li{padding:3px 0 3px 26px;position:relative}
ul.checks li::before{position:absolute;left:2px;top:3px;font-weight:700}
ul.checks li.pass::before{content:"\2713";color:var(--rep)}
ul.checks li.fail::before{content:"\2717";color:var(--err)}
ul.checks li.info::before{content:"\2022";color:var(--mute)}
ul.checks li.skip{color:var(--mute)}
ul.checks li.skip::before{content:"\2013";color:var(--mute)}
ul.checks li.fail{background:#fdf0f0;border-radius:6px}
.stage{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:12.5px;color:#3d4fa3;margin-right:6px}
.detail{display:block;color:var(--err);font-size:13px;margin-top:2px}
details.step.failed{border:2px solid var(--err)}
.failure{border:2px solid var(--err);padding:6px 24px 14px;margin-bottom:18px}
.failure h2{color:var(--err);font-size:19px;margin:12px 0 4px}
.failure dt{font-weight:650;margin-top:10px;color:#2b3345}
.failure dd{margin:2px 0 0 0}
.failure dd ul{margin:2px 0;padding-left:20px}
.failure code{background:#f4f5f9;padding:1px 4px;border-radius:4px}
.by{color:var(--mute);font-size:12px;margin-right:6px;text-transform:uppercase;letter-spacing:.5px}
.note{margin:8px 0;padding:8px 12px;border-radius:8px;font-size:14px}
.note.classic{background:#fff7e6}.note.modern{background:#eaf3ff}.note.why{background:#eefaf3}
.note b{margin-right:6px}
footer{color:var(--mute);font-size:13px;text-align:center;padding:10px}
svg text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif}
svg a:hover .lbl{text-decoration:underline}
`

// page writes the whole document.
func (h *htmlWriter) page(st *Story) {
	h.s("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
	h.s("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
	h.w("<title>%s</title>\n<style>%s</style>\n</head>\n<body>\n", esc(st.Title), pageCSS)
	h.w("<header><h1>%s</h1><div class=\"meta\">", esc(st.Title))
	for _, kv := range [][2]string{{"realm", st.Realm}, {"client", st.Client}, {"service", st.Service},
		{"KDC (AS and TGS)", st.KDCAddr}, {"service at", st.ServiceAddr}, {"view", viewName(st.View)}} {
		if kv[1] != "" {
			h.w("<span><b>%s</b> %s</span>", esc(kv[0]), esc(kv[1]))
		}
	}
	h.s("</div></header>\n<main>\n")
	h.s("<figure class=\"diagram card\">")
	h.diagram(st)
	h.s("<figcaption>Each arrow is a message that crossed the wire; click one to open it below.</figcaption></figure>\n")
	if len(st.Intro) > 0 {
		h.s("<section class=\"intro card\">")
		for _, p := range st.Intro {
			h.w("<p>%s</p>", esc(p))
		}
		h.s("</section>\n")
	}
	failed := ""
	if f := st.Failure; f != nil {
		failed = f.StepID
		h.failure(st, f)
	}
	h.s("<section class=\"steps\">\n")
	for i := range st.Steps {
		h.step(&st.Steps[i], i+1, st.Steps[i].ID == failed)
	}
	h.s("</section>\n")
	if len(st.Outro) > 0 {
		h.s("<section class=\"intro card\">")
		for _, p := range st.Outro {
			h.w("<p>%s</p>", esc(p))
		}
		h.s("</section>\n")
	}
	h.s("</main>\n<footer>Generated by kclient walkthrough. The page is self-contained: it loads nothing.</footer>\n</body>\n</html>\n")
}

// failure writes the diagnosis of a failure story, linked to the step whose check failed.
func (h *htmlWriter) failure(st *Story, f *Failure) {
	h.s("<section class=\"failure card\" id=\"what-went-wrong\"><h2>What went wrong</h2><dl>")
	for _, r := range failureRows(st, f) {
		h.w("<dt>%s</dt><dd>", esc(r.label))
		if len(r.values) == 1 {
			h.s(esc(r.values[0]))
		} else {
			h.s("<ul>")
			for _, v := range r.values {
				h.w("<li>%s</li>", esc(v))
			}
			h.s("</ul>")
		}
		h.s("</dd>")
	}
	h.s("</dl>")
	if f.StepID != "" {
		h.w("<p><a href=\"#step-%s\">Go to the step where it failed</a></p>", esc(f.StepID))
	}
	h.s("</section>\n")
}

// viewName says what a view means.
func viewName(v string) string {
	switch v {
	case ViewRealm:
		return "every key of the realm known, every part opened"
	case ViewCapture:
		return "a capture: parts opened with the keys given"
	}
	return "the client's: tickets stay sealed"
}

// stepClass says what kind of arrow a step is: req, rep, err, loc or after.
func stepClass(s *Step) string {
	switch {
	case s.Transport == "local":
		return "loc"
	case s.Message == "KRB-ERROR":
		return "err"
	case strings.HasPrefix(s.Message, "GSS"):
		return "after"
	case s.From == ActorClient:
		return "req"
	}
	return "rep"
}

// Diagram geometry.
const (
	svgWidth   = 1100
	svgTop     = 104 // first arrow
	svgRow     = 50
	svgLifeTop = 74
)

// actorX places the four lifelines.
var actorX = map[string]int{ActorClient: 120, ActorAS: 440, ActorTGS: 700, ActorService: 980}

// actorXAttacker places five lifelines: an attacker between the client and the KDC.
var actorXAttacker = map[string]int{ActorClient: 95, ActorAttacker: 265, ActorAS: 480, ActorTGS: 720, ActorService: 995}

// localLabel names a local step in the diagram.
func localLabel(s *Step) string {
	switch {
	case s.ID == "s2k":
		return "password → key"
	case strings.HasPrefix(s.ID, "offline-guess"):
		return "guesses offline"
	case strings.HasPrefix(s.ID, "tamper"):
		return "changes a byte"
	}
	return "local"
}

// hasActor reports whether a step of the story involves actor a.
func hasActor(st *Story, a string) bool {
	for _, s := range st.Steps {
		if s.From == a || s.To == a {
			return true
		}
	}
	return false
}

// arrowColor is the stroke of each step class.
var arrowColor = map[string]string{"req": "#2f6fde", "rep": "#1f9d6b", "err": "#d64545", "loc": "#c77d12", "after": "#8a8fa0"}

// diagram writes the SVG sequence diagram.
func (h *htmlWriter) diagram(st *Story) {
	height := svgTop + len(st.Steps)*svgRow + 10
	h.w(`<svg viewBox="0 0 %d %d" role="img" aria-label="Sequence diagram of the Kerberos messages">`, svgWidth, height)
	h.s(`<defs>`)
	for cls, col := range arrowColor {
		h.w(`<marker id="ah-%s" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="%s"/></marker>`, cls, col)
	}
	h.s(`</defs>`)
	// The KDC box around AS and TGS.
	xs, actors, boxW := actorX, []string{ActorClient, ActorAS, ActorTGS, ActorService}, 200
	if hasActor(st, ActorAttacker) {
		xs, actors, boxW = actorXAttacker, []string{ActorClient, ActorAttacker, ActorAS, ActorTGS, ActorService}, 160
	}
	kx0, kx1 := xs[ActorAS]-110, xs[ActorTGS]+110
	h.w(`<rect x="%d" y="4" width="%d" height="%d" rx="14" fill="#f3f0fb" stroke="#b9a8e6" stroke-dasharray="5 4"/>`, kx0, kx1-kx0, height-8)
	kdcLabel := "KDC"
	if st.KDCAddr != "" {
		kdcLabel += " · " + st.KDCAddr
	}
	h.w(`<text x="%d" y="%d" text-anchor="middle" font-size="12" fill="#6b55b0">%s</text>`, (kx0+kx1)/2, height-12, esc(kdcLabel))
	subs := map[string]string{
		ActorClient: st.Client, ActorAS: "Authentication Service", ActorTGS: "Ticket-Granting Service", ActorService: st.Service,
		ActorAttacker: "on the network, or a user",
	}
	for _, a := range actors {
		x := xs[a]
		h.w(`<line class="lifeline" x1="%d" y1="%d" x2="%d" y2="%d" stroke="#b7bccb" stroke-width="1.5" stroke-dasharray="4 5"/>`, x, svgLifeTop, x, height-24)
		fill := "#1e2a4a"
		if a == ActorAttacker {
			fill = "#8c2f39"
		}
		h.w(`<rect x="%d" y="14" width="%d" height="54" rx="10" fill="%s"/>`, x-boxW/2, boxW, fill)
		h.w(`<text x="%d" y="38" text-anchor="middle" font-size="17" font-weight="700" fill="#fff">%s</text>`, x, esc(a))
		if sub := subs[a]; sub != "" {
			h.w(`<text x="%d" y="57" text-anchor="middle" font-size="11.5" fill="#c9d6ff">%s</text>`, x, esc(sub))
		}
	}
	for i := range st.Steps {
		s := &st.Steps[i]
		y := svgTop + i*svgRow
		cls := stepClass(s)
		col := arrowColor[cls]
		x1, ok1 := xs[s.From]
		x2, ok2 := xs[s.To]
		if !ok1 || !ok2 {
			continue
		}
		label := s.Message
		if label == "" {
			label = localLabel(s)
		}
		letters := strings.Join(s.Letters, " ")
		h.w(`<a href="#step-%s"><title>%s</title>`, esc(s.ID), esc(s.Title))
		if x1 == x2 {
			// A local step: a box on the lifeline.
			h.w(`<rect x="%d" y="%d" width="190" height="30" rx="8" fill="#fff4e0" stroke="%s"/>`, x1-14, y-12, col)
			h.w(`<text class="lbl" x="%d" y="%d" font-size="13" fill="%s"><tspan font-weight="700">%d</tspan>  %s  <tspan fill="#8a5a00" font-weight="700">%s</tspan></text>`,
				x1-4, y+8, col, i+1, esc(label), esc(letters))
			h.s(`</a>`)
			continue
		}
		dash := ""
		if cls == "after" {
			dash = ` stroke-dasharray="6 4"`
		}
		h.w(`<line class="arrow" x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2.2"%s marker-end="url(#ah-%s)"/>`, x1, y+8, x2, y+8, col, dash, cls)
		mid := (x1 + x2) / 2
		h.w(`<text class="lbl" x="%d" y="%d" text-anchor="middle" font-size="13.5" fill="%s"><tspan fill="#5c6578">%d</tspan>  <tspan font-weight="700">%s</tspan>`, mid, y+1, col, i+1, esc(label))
		if letters != "" {
			h.w(`  <tspan fill="#a86b00" font-weight="800">%s</tspan>`, esc(letters))
		}
		h.s(`</text>`)
		var sub []string
		if s.Transport != "" {
			sub = append(sub, s.Transport)
		}
		if s.Size > 0 {
			sub = append(sub, strconv.Itoa(s.Size)+" B")
		}
		if len(s.Parts) > 0 {
			us := make([]string, len(s.Parts))
			for j, p := range s.Parts {
				us[j] = strconv.Itoa(p.Key.Usage)
				if p.Key.ChecksumUsage != 0 {
					us[j] += "+" + strconv.Itoa(p.Key.ChecksumUsage)
				}
			}
			word := "key usage "
			if len(us) > 1 {
				word = "key usages "
			}
			sub = append(sub, word+strings.Join(us, ", "))
		}
		h.w(`<text x="%d" y="%d" text-anchor="middle" font-size="11" fill="#7a8194">%s</text>`, mid, y+23, esc(strings.Join(sub, " · ")))
		h.s(`</a>`)
	}
	h.s(`</svg>`)
}

// step writes one <details> section.
func (h *htmlWriter) step(s *Step, n int, failed bool) {
	cls, open := "step card", ""
	if failed {
		cls, open = "step card failed", " open"
	}
	h.w("<details class=\"%s\" id=\"step-%s\"%s><summary><span class=\"num\">%d</span><span class=\"letters\">", cls, esc(s.ID), open, n)
	for _, l := range s.Letters {
		h.w("<span class=\"letter\">%s</span>", esc(l))
	}
	msg := s.Message
	if msg == "" {
		msg = "local"
	}
	route := s.From + " → " + s.To
	if s.From == s.To {
		route = "on the " + s.From
	}
	h.w("</span><span class=\"msg %s\">%s</span><span class=\"route\">%s</span><span class=\"title\">%s</span>",
		stepClass(s), esc(msg), esc(route), esc(s.Title))
	if s.Size > 0 {
		h.w("<span class=\"size\">%s</span>", esc(bytesText(s.Size)))
	}
	h.s("</summary><div class=\"body\">")
	h.w("<p class=\"transport\">%s</p><p class=\"summary\">%s</p>", esc(transportLine(s)), esc(s.Summary))
	if len(s.Fields) > 0 {
		h.s("<h4>Fields</h4>")
		h.fields(s.Fields)
	}
	if len(s.Parts) > 0 {
		h.s("<h4>Encrypted parts</h4>")
		for i := range s.Parts {
			h.part(&s.Parts[i])
		}
	}
	if len(s.Checks) > 0 {
		h.s("<h4>What the receiver checks</h4><ul class=\"checks\">")
		for _, c := range s.Checks {
			h.w("<li class=\"%s\" title=\"%s\"><span class=\"by\">%s</span>", esc(c.Result), esc(byHeading(c.By)), esc(c.By))
			if c.Stage != "" {
				h.w("<span class=\"stage\">%s</span>", esc(c.Stage))
			}
			if c.Result == CheckSkip {
				h.s("(not reached) ")
			}
			h.s(esc(c.Text))
			if c.Detail != "" {
				h.w("<span class=\"detail\">→ %s</span>", esc(c.Detail))
			}
			h.s("</li>")
		}
		h.s("</ul>")
	}
	if len(s.Notes) > 0 {
		h.s("<h4>Notes</h4>")
		for _, nt := range s.Notes {
			h.w("<p class=\"note %s\"><b>%s</b>%s</p>", esc(nt.Kind), esc(noteLabel(nt.Kind)), esc(nt.Text))
		}
	}
	h.s("</div></details>\n")
}

// noteLabel is the heading of a note kind.
func noteLabel(k string) string {
	switch k {
	case NoteClassic:
		return "Classic description."
	case NoteModern:
		return "Modern Kerberos."
	case NoteWhy:
		return "Why."
	}
	return k
}

// part writes one encrypted part.
func (h *htmlWriter) part(p *Part) {
	cls := "sealed"
	if p.Opened {
		cls = "opened"
	}
	h.w("<div class=\"part %s\"><div class=\"part-head\">", cls)
	if p.Letter != "" {
		h.w("<span class=\"letter\">%s</span>", esc(p.Letter))
	}
	h.w("%s: <span style=\"font-weight:400\">%s</span></div>", esc(p.Name), esc(p.What))
	k := p.Key
	h.s("<table class=\"key\">")
	h.w("<tr><th>key</th><td>%s</td></tr>", esc(k.Owner))
	h.w("<tr><th>enctype</th><td>%s</td></tr>", esc(k.EtypeName))
	if k.KVNO != 0 {
		h.w("<tr><th>kvno</th><td>%d</td></tr>", k.KVNO)
	}
	h.w("<tr><th>key usage</th><td>%d: %s</td></tr>", k.Usage, esc(k.UsageName))
	if k.ChecksumUsage != 0 {
		h.w("<tr><th>checksum inside</th><td>key usage %d: %s</td></tr>", k.ChecksumUsage, esc(usageName(k.ChecksumUsage)))
	}
	if k.Value != "" {
		h.w("<tr><th>key value</th><td class=\"hex\">%s</td></tr>", esc(k.Value))
	}
	h.w("<tr><th>size</th><td>%s</td></tr></table>", esc(partSize(p)))
	if p.Opened {
		h.w("<div class=\"dec\">%s with this key:</div>", esc(openedWord(p)))
		h.fields(p.Fields)
	} else {
		h.w("<p class=\"sealed-note\">Not opened: %s</p>", esc(p.Reason))
	}
	h.s("</div>")
}

// fields writes a field tree.
func (h *htmlWriter) fields(fs []Field) {
	h.s("<ul class=\"fields\">")
	for _, f := range fs {
		h.w("<li><span class=\"fn\">%s</span><span class=\"fv\">%s</span>", esc(f.Name), esc(f.Value))
		if len(f.Fields) > 0 {
			h.fields(f.Fields)
		}
		h.s("</li>")
	}
	h.s("</ul>")
}
