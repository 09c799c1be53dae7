package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"
)

// maxPasswordLine bounds the password line read from a non-terminal stdin.
const maxPasswordLine = 4096

// readPassword reads the password: from the terminal without echo (prompt on stderr) when stdin is a terminal,
// otherwise exactly one line of stdin, byte by byte so that nothing after the line is consumed. The trailing
// newline (and a carriage return before it) is removed.
func readPassword(env *Env, prompt string) (string, error) {
	if f, ok := env.In.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(env.ErrOut, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(env.ErrOut)
		if err != nil {
			return "", fmt.Errorf("kclient: reading password: %w", err)
		}
		return string(b), nil
	}
	return readLine(env.In)
}

// readLine reads one line of at most maxPasswordLine bytes from r.
func readLine(r io.Reader) (string, error) {
	var line []byte
	var one [1]byte
	empty := 0 // reads that returned nothing; a well-behaved reader rarely does this
	for {
		n, err := r.Read(one[:])
		if n == 0 && err == nil {
			if empty++; empty > 100 {
				return "", errors.New("kclient: standard input returns no data")
			}
			continue
		}
		if n == 1 {
			if one[0] == '\n' {
				break
			}
			if len(line) >= maxPasswordLine {
				return "", fmt.Errorf("kclient: password line longer than %d bytes", maxPasswordLine)
			}
			line = append(line, one[0])
			continue
		}
		if errors.Is(err, io.EOF) {
			if len(line) == 0 {
				return "", errors.New("kclient: no password on standard input")
			}
			break
		}
		if err != nil {
			return "", fmt.Errorf("kclient: reading password: %w", err)
		}
	}
	if k := len(line); k > 0 && line[k-1] == '\r' {
		line = line[:k-1]
	}
	return string(line), nil
}
