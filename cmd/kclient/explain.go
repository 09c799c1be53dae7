package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kerbkit/kerbkit/client"
	"github.com/kerbkit/kerbkit/walkthrough"
)

// ExplainOptions are the flags of kclient explain.
type ExplainOptions struct {
	Env *Env

	Capture  string // the pcap or pcapng file
	Keytab   string // --keytab FILE
	Password bool   // --password: read a user's password from the terminal (or one line of stdin)
	HTML     string // --html FILE
	JSON     bool   // --json
	Step     bool   // --step
	NoColor  bool   // --no-color
}

// NewCmdExplain returns "kclient explain". runF replaces the run function in tests; nil means explainRun.
func NewCmdExplain(env *Env, runF func(context.Context, *ExplainOptions) error) *cobra.Command {
	opts := &ExplainOptions{Env: env}
	cmd := &cobra.Command{
		Use:   "explain CAPTURE [--keytab FILE] [--password] [--step] [--json] [--html FILE]",
		Short: "Explain the Kerberos messages of a packet capture (pcap or pcapng), opening what the keys given open",
		Long: `Read a packet capture (pcap, as tcpdump -w writes it, or pcapng, as Wireshark does) and explain every
Kerberos message in it the way kclient walkthrough does: its classic letter (A to H) and RFC 4120 name, who sent
it to whom and how, its decoded fields, each encrypted part with the key that protects it and the key usage, and
what the receiver checks.

It finds KDC messages on UDP and TCP port 88 (TCP connections reassembled), and the AP-REQ, AP-REP and
per-message tokens of the GSS sample protocol (gss-client, kclient request --addr) and of HTTP Negotiate on
any port.

With --keytab FILE the keys in the keytab open what they sealed: the realm's krbtgt key opens the TGT (B, C),
a service's key its tickets (E), a client's key its timestamp and message A. --password reads a user's
password from the terminal (never from the command line; without a terminal, one line of standard input) and
derives the user's key with the salt the KDC announced. The session keys found inside open the messages that
follow: D and F with the TGT's, G and H with the service ticket's, the tokens after H with the subkeys. Key
values are never printed.

A truncated capture is explained up to its last complete packet, and the command then fails.`,
		Example: `  tcpdump -i lo -s 0 -w krb.pcap port 88 &        # then: kinit alice; kvno host/localhost
  kclient explain krb.pcap                          # the cleartext of every message
  kclient explain krb.pcap --keytab realm.keytab --password
  kclient explain krb.pcap --keytab realm.keytab --html krb.html`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Capture = args[0]
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return explainRun(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Keytab, "keytab", "", "a keytab whose keys open what they sealed (krbtgt, services, clients)")
	f.BoolVar(&opts.Password, "password", false, "read a user's password from the terminal to open its timestamp and message A")
	f.StringVar(&opts.HTML, "html", "", "write the explanation as one self-contained HTML page to FILE")
	f.BoolVar(&opts.JSON, "json", false, "print the explanation as JSON")
	f.BoolVar(&opts.Step, "step", false, "wait for Enter after each message")
	f.BoolVar(&opts.NoColor, "no-color", false, "no ANSI colours, even on a terminal")
	_ = cmd.MarkFlagFilename("keytab")
	return cmd
}

// explainRun reads the capture and the keys, and shows the explanation.
func explainRun(_ context.Context, o *ExplainOptions) error {
	if o.Step && o.JSON {
		return &usageError{err: errors.New("--step pages the text explanation; it cannot be combined with --json")}
	}
	co := walkthrough.CaptureOptions{Name: filepath.Base(o.Capture)}
	if o.Keytab != "" {
		kt, err := client.LoadKeytab(o.Keytab)
		if err != nil {
			return fmt.Errorf("kclient: keytab %s: %w", o.Keytab, err)
		}
		co.Keytab = kt
	}
	if o.Password {
		pw, err := readPassword(o.Env, "Password of the user in the capture: ")
		if err != nil {
			return err
		}
		co.Password, co.HasPassword = pw, true
	}
	f, err := os.Open(o.Capture)
	if err != nil {
		return fmt.Errorf("kclient: %w", err)
	}
	defer f.Close()
	st, err := walkthrough.ExplainCapture(f, co)
	var te *walkthrough.TruncatedError
	switch {
	case errors.As(err, &te):
		if serr := showStory(o.Env, st, storyView{HTML: o.HTML, JSON: o.JSON, Step: o.Step, NoColor: o.NoColor}); serr != nil {
			return serr
		}
		return fmt.Errorf("kclient: %s: %w", o.Capture, te)
	case err != nil:
		return &userError{msg: fmt.Sprintf("kclient: %s: %s", o.Capture, strings.TrimPrefix(err.Error(), "walkthrough: ")), err: err}
	}
	if len(st.Steps) == 0 {
		if serr := showStory(o.Env, st, storyView{HTML: o.HTML, JSON: o.JSON, NoColor: o.NoColor}); serr != nil {
			return serr
		}
		return fmt.Errorf("kclient: %s holds no Kerberos message (KDC traffic is on port 88; was the capture filtered?)", o.Capture)
	}
	return showStory(o.Env, st, storyView{HTML: o.HTML, JSON: o.JSON, Step: o.Step, NoColor: o.NoColor})
}
