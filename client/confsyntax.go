package client

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrConfigSyntax reports a krb5.conf that does not follow the profile syntax
// (MIT: "Improper format of Kerberos configuration file").
var ErrConfigSyntax = errors.New("improper format of Kerberos configuration file")

// checkConfigSyntax checks krb5.conf text against the profile syntax MIT's
// parser accepts (prof_parse.c): comments (# or ;), [section] headers,
// "tag = value" and "tag = {" relations, "}" closing a subsection (optionally
// followed by *), and include/includedir/module directives. gokrb5's parser
// skips what it does not understand, so without this a broken header or a
// binary file goes unnoticed and the user only learns that no default realm
// is configured. The error names the line.
func checkConfigSyntax(b []byte) error {
	if !utf8.Valid(b) || bytes.IndexByte(b, 0) >= 0 {
		line := 1 + bytes.Count(b[:firstBinary(b)], []byte("\n"))
		return fmt.Errorf("line %d: binary data, not text: %w", line, ErrConfigSyntax)
	}
	inSection, depth := false, 0
	for i, raw := range strings.Split(string(b), "\n") {
		n := i + 1
		line := strings.TrimSpace(strings.TrimSuffix(raw, "\r"))
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
			continue
		case isDirective(line):
			continue
		case line[0] == '[':
			end := strings.IndexByte(line, ']')
			if end < 0 {
				return fmt.Errorf("line %d: section header %q has no closing ]: %w", n, clip(line), ErrConfigSyntax)
			}
			if rest := strings.TrimSpace(line[end+1:]); rest != "" && rest != "*" {
				return fmt.Errorf("line %d: text after the section header %q: %w", n, clip(line), ErrConfigSyntax)
			}
			if strings.TrimSpace(line[1:end]) == "" {
				return fmt.Errorf("line %d: empty section name: %w", n, ErrConfigSyntax)
			}
			if depth > 0 {
				return fmt.Errorf("line %d: section header %q inside an unclosed { block: %w", n, clip(line), ErrConfigSyntax)
			}
			inSection = true
		case line[0] == '}':
			if rest := strings.TrimSpace(line[1:]); rest != "" && rest != "*" {
				return fmt.Errorf("line %d: text after }: %w", n, ErrConfigSyntax)
			}
			if depth == 0 {
				return fmt.Errorf("line %d: } without a matching {: %w", n, ErrConfigSyntax)
			}
			depth--
		default:
			if !inSection {
				return fmt.Errorf("line %d: %q before the first [section]: %w", n, clip(line), ErrConfigSyntax)
			}
			eq := strings.IndexByte(line, '=')
			if eq <= 0 || strings.TrimSpace(line[:eq]) == "" {
				return fmt.Errorf("line %d: %q is not \"name = value\": %w", n, clip(line), ErrConfigSyntax)
			}
			if v := strings.TrimSpace(line[eq+1:]); v == "{" {
				depth++
			} else if strings.HasPrefix(v, "{") {
				return fmt.Errorf("line %d: text after {: %w", n, ErrConfigSyntax)
			}
		}
	}
	if depth > 0 {
		return fmt.Errorf("end of file inside a { block (missing }): %w", ErrConfigSyntax)
	}
	return nil
}

// isDirective reports MIT's file-level directives.
func isDirective(line string) bool {
	for _, d := range []string{"include ", "includedir ", "module "} {
		if strings.HasPrefix(line, d) {
			return true
		}
	}
	return false
}

// firstBinary is the offset of the first NUL or invalid UTF-8 byte.
func firstBinary(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == 0 || (r == utf8.RuneError && size == 1) {
			return i
		}
		i += size
	}
	return len(b)
}

// clip shortens a line quoted in an error.
func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}
