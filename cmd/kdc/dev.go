package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kerbkit/kerbkit/kdc"
	"github.com/kerbkit/kerbkit/principal"
	"github.com/kerbkit/kerbkit/store"
	"github.com/kerbkit/kerbkit/ticket"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Defaults of `kdc dev`.
const (
	devRealm        = "KERBKIT.TEST"
	devUser         = "alice"
	devPassword     = "kerbkit-dev"
	devKeytab       = "service.keytab"
	devInfoFile     = "realm.json"
	devKrb5ConfFile = "krb5.conf"
)

// devServices get random keys and land in the dev keytab unless --service says
// otherwise.
var devServices = []string{"host/localhost", "HTTP/localhost"}

type devOptions struct {
	dir       string
	out       string
	realm     string
	listen    string
	advertise string
	users     []string // NAME[:PASSWORD]
	usersFile string
	password  string
	services  []string // NAME[=KEYTAB]
	enctypes  string
	maxLife   time.Duration
	maxRenew  time.Duration
	json      bool
	logLevel  string
	// kpasswdListen is --kpasswd-listen: "" derives it from listen.
	kpasswdListen string

	realmSet, policySet, usersSet bool // --realm, --max-life/--max-renew, --user given (flag or environment)
}

// devEnv maps each flag of `kdc dev` to the environment variable that sets it
// when the flag is absent, so a container is configured with -e alone. Flags
// that repeat take a comma- or space-separated list.
var devEnv = map[string]string{
	"dir":        "KERBKIT_DIR",
	"out":        "KERBKIT_OUT",
	"realm":      "KERBKIT_REALM",
	"listen":     "KERBKIT_LISTEN",
	"advertise":  "KERBKIT_ADVERTISE",
	"user":       "KERBKIT_USERS",
	"users-file": "KERBKIT_USERS_FILE",
	"password":   "KERBKIT_PASSWORD",
	"service":    "KERBKIT_SERVICES",
	"enctypes":   "KERBKIT_ENCTYPES",
	"max-life":   "KERBKIT_MAX_LIFE",
	"max-renew":  "KERBKIT_MAX_RENEW",
	"json":       "KERBKIT_JSON",
	"log-level":  "KERBKIT_LOG_LEVEL",

	"kpasswd-listen": "KERBKIT_KPASSWD_LISTEN",
}

func newDevCmd(e *env) *cobra.Command {
	o := &devOptions{}
	c := &cobra.Command{
		Use:   "dev [--dir DIR] [--realm R] [--user NAME[:PASSWORD]]... [--service NAME[=KEYTAB]]... [--json]",
		Short: "A working realm in one command: users, services, keytabs, krb5.conf",
		Long: `dev creates a realm in DIR (a new temporary directory, removed on exit, unless
--dir is given; an existing realm in DIR is reused as it is), adds the users with
their passwords and the services with random keys, exports the services' keys to
keytabs, writes krb5.conf and realm.json (everything a test harness needs, as
JSON) into the output directory, and serves over UDP and TCP until SIGINT or
SIGTERM.

Every flag can also come from the environment variable in its description, which
is how the kerbkit/kdc container image is configured. Repeatable flags take a
comma- or space-separated list there. Principals that already exist are kept
as they are; keytabs are rewritten with their current keys on every start.

With --json, stdout carries exactly one line once the realm answers: a JSON
object with the realm, the KDC address and port, the paths of krb5.conf, the
keytabs, a credential cache to use and the database, the users with their
passwords and the environment (KRB5_CONFIG, KRB5CCNAME, KRB5_KTNAME) for client
programs. The human-readable summary then goes to stderr.`,
		Example: `  kdc dev
  kdc dev --dir ./realm --user alice:pw1 --user bob:pw2 --service HTTP/www.example.test
  kdc dev --json | head -1 | jq .krb5_conf
  KERBKIT_REALM=EXAMPLE.TEST KERBKIT_LISTEN=0.0.0.0:88 kdc dev --dir /var/lib/kerbkit --out /etc/kerbkit`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd.Flags(), devEnv); err != nil {
				return err
			}
			o.realmSet = cmd.Flags().Changed("realm")
			o.policySet = cmd.Flags().Changed("max-life") || cmd.Flags().Changed("max-renew")
			o.usersSet = cmd.Flags().Changed("user")
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return runDev(ctx, e, o)
		},
	}
	f := c.Flags()
	f.StringVar(&o.dir, "dir", "", "directory of the realm's database (default: a temporary one, removed on exit)")
	f.StringVar(&o.out, "out", "", "directory for krb5.conf, keytabs and realm.json (default: --dir)")
	f.StringVar(&o.realm, "realm", devRealm, "realm name")
	f.StringVar(&o.listen, "listen", "127.0.0.1:0", "address for UDP and TCP (port 0 picks a free port)")
	f.StringVar(&o.advertise, "advertise", "", "KDC address written to krb5.conf, HOST[:PORT] (default: the bound address, or this host's name when listening on all addresses)")
	f.StringArrayVar(&o.users, "user", []string{devUser}, "a user to create, NAME or NAME:PASSWORD (repeatable; without a password it gets --password)")
	f.StringVar(&o.usersFile, "users-file", "", "file of users to create, one NAME:PASSWORD a line (keeps passwords out of argv and the environment; replaces the default user)")
	f.StringVar(&o.password, "password", devPassword, "password of users given without one (a throwaway dev realm: it is printed)")
	f.StringArrayVar(&o.services, "service", devServices, "a service to create with random keys, NAME or NAME=KEYTAB (repeatable; KEYTAB is relative to --out, default "+devKeytab+")")
	f.StringVar(&o.enctypes, "enctypes", "", "comma-separated enctypes of the new principals' keys (default: "+defaultEnctypeNames()+")")
	durationFlag(f, &o.maxLife, "max-life", principal.DefaultPolicy.MaxLife, "longest ticket lifetime of a new realm, e.g. 10h")
	durationFlag(f, &o.maxRenew, "max-renew", principal.DefaultPolicy.MaxRenew, "longest renewable lifetime of a new realm, e.g. 7d")
	f.BoolVar(&o.json, "json", false, "print one JSON line describing the realm on stdout once it is ready")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&o.kpasswdListen, "kpasswd-listen", "", "address of the password-change service (default: the --listen host on port 464, or a free port when --listen has port 0; none turns it off)")
	for name, env := range devEnv {
		if fl := f.Lookup(name); fl != nil {
			fl.Usage += " (env " + env + ")"
		}
	}
	return c
}

// applyEnv sets every flag the command line left unset from its environment
// variable, if that is set. Slice flags take a comma- or space-separated list.
func applyEnv(fs *pflag.FlagSet, vars map[string]string) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		name, ok := vars[f.Name]
		if !ok || f.Changed || err != nil {
			return
		}
		v, ok := os.LookupEnv(name)
		if !ok {
			return
		}
		items := []string{v}
		if strings.HasSuffix(f.Value.Type(), "Array") || strings.HasSuffix(f.Value.Type(), "Slice") {
			items = strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' })
		}
		for _, it := range items {
			if serr := fs.Set(f.Name, it); serr != nil {
				err = fmt.Errorf("kdc: %s=%q: %w", name, v, serr)
				return
			}
		}
	})
	return err
}

// devUserSpec is a user to create.
type devUserSpec struct{ name, password string }

// devServiceSpec is a service to create and the keytab (relative to --out) it
// goes to.
type devServiceSpec struct{ name, keytab string }

// devPlan is what `kdc dev` will create, checked before anything is written.
type devPlan struct {
	users    []devUserSpec
	services []devServiceSpec
	enctypes []int32
}

// plan validates the options into what to create.
func (o *devOptions) plan() (*devPlan, error) {
	p := &devPlan{}
	seen := map[string]bool{}
	add := func(name string) error {
		if _, err := principal.Parse(name, "X"); err != nil {
			return fmt.Errorf("kdc: %w", err)
		}
		if seen[name] {
			return fmt.Errorf("kdc: %s is given twice", name)
		}
		seen[name] = true
		return nil
	}
	users := o.users
	if o.usersFile != "" && !o.usersSet {
		users = nil // the file says who the users are; no default alice beside them
	}
	for _, u := range users {
		name, pw, hasPW := strings.Cut(u, ":")
		if !hasPW {
			pw = o.password
		}
		if pw == "" {
			return nil, fmt.Errorf("kdc: --user %s: empty password", name)
		}
		if err := add(name); err != nil {
			return nil, err
		}
		p.users = append(p.users, devUserSpec{name, pw})
	}
	if o.usersFile != "" {
		us, err := readUsersFile(o.usersFile)
		if err != nil {
			return nil, err
		}
		for _, u := range us {
			if err := add(u.name); err != nil {
				return nil, err
			}
		}
		p.users = append(p.users, us...)
	}
	for _, s := range o.services {
		name, kt, hasKT := strings.Cut(s, "=")
		if !hasKT {
			kt = devKeytab
		}
		if kt == "" || kt != filepath.Base(kt) || kt == "." || kt == ".." || kt == devInfoFile || kt == devKrb5ConfFile {
			return nil, fmt.Errorf("kdc: --service %s: keytab %q must be a plain file name in --out", s, kt)
		}
		if err := add(name); err != nil {
			return nil, err
		}
		p.services = append(p.services, devServiceSpec{name, kt})
	}
	if len(p.users) == 0 && len(p.services) == 0 {
		return nil, errors.New("kdc: nothing to create: give --user or --service")
	}
	if o.advertise != "" {
		if err := checkAdvertise(o.advertise); err != nil {
			return nil, err
		}
	}
	if o.enctypes != "" {
		var err error
		if p.enctypes, err = principal.ParseEnctypes(o.enctypes); err != nil {
			return nil, fmt.Errorf("kdc: --enctypes: %w", err)
		}
	}
	return p, nil
}

// readUsersFile reads NAME:PASSWORD lines; blank lines and lines starting with
// '#' are skipped. The error never quotes a line: it may hold a password.
func readUsersFile(path string) ([]devUserSpec, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("kdc: --users-file: %w", err)
	}
	defer f.Close()
	var us []devUserSpec
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		name, pw, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" || pw == "" {
			return nil, fmt.Errorf("kdc: --users-file %s line %d: want NAME:PASSWORD", path, n)
		}
		us = append(us, devUserSpec{name, pw})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("kdc: --users-file %s: %w", path, err)
	}
	return us, nil
}

// devInfo is what `kdc dev --json` prints and what realm.json holds: what a
// test harness in any language needs to use the realm.
type devInfo struct {
	Realm       string            `json:"realm"`
	KDC         string            `json:"kdc"`    // HOST:PORT as written in krb5.conf
	Listen      string            `json:"listen"` // the address bound, UDP and TCP
	Host        string            `json:"host"`   // host part of kdc
	Port        int               `json:"port"`   // port of kdc
	Transports  []string          `json:"transports"`
	Kpasswd     string            `json:"kpasswd,omitempty"`      // HOST:PORT of the password-change service, as in krb5.conf
	KpasswdPort int               `json:"kpasswd_port,omitempty"` // its port
	Krb5Conf    string            `json:"krb5_conf"`
	Keytab      string            `json:"keytab,omitempty"` // the keytab of the first service
	Keytabs     map[string]string `json:"keytabs,omitempty"`
	CCache      string            `json:"ccache"` // a credential cache path for clients (kdc dev does not create it)
	DB          string            `json:"db"`
	Dir         string            `json:"dir"`
	Out         string            `json:"out"`
	User        string            `json:"user,omitempty"`     // the first user, NAME@REALM
	Password    string            `json:"password,omitempty"` // the first user's password
	Users       []devInfoUser     `json:"users"`
	Services    []devInfoService  `json:"services"`
	MaxLife     int64             `json:"max_life_seconds"`
	MaxRenew    int64             `json:"max_renew_seconds"`
	Env         map[string]string `json:"env"`
	PID         int               `json:"pid"`
}

type devInfoUser struct {
	Principal string `json:"principal"`
	Password  string `json:"password"`
}

type devInfoService struct {
	Principal string `json:"principal"`
	Keytab    string `json:"keytab"`
}

func runDev(ctx context.Context, e *env, o *devOptions) error {
	plan, err := o.plan()
	if err != nil {
		return err
	}
	if o.dir == "" {
		d, err := os.MkdirTemp("", "kerbkit-dev-")
		if err != nil {
			return fmt.Errorf("kdc: %w", err)
		}
		o.dir = d
		defer os.RemoveAll(d)
	} else if err := os.MkdirAll(o.dir, 0o700); err != nil {
		return fmt.Errorf("kdc: %w", err)
	}
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return fmt.Errorf("kdc: %w", err)
	}
	out := dir
	if o.out != "" {
		if out, err = filepath.Abs(o.out); err != nil {
			return fmt.Errorf("kdc: %w", err)
		}
		if err := os.MkdirAll(out, 0o755); err != nil {
			return fmt.Errorf("kdc: %w", err)
		}
	}
	// A realm.json left by an earlier run must not make anyone think we are up.
	if err := os.Remove(filepath.Join(out, devInfoFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("kdc: %w", err)
	}
	e.db = filepath.Join(dir, "kdc.db")
	info, err := setupDevRealm(ctx, e, o, plan, out)
	if err != nil {
		return err
	}
	info.Dir, info.Out, info.DB, info.PID = dir, out, e.db, os.Getpid()
	info.Krb5Conf = filepath.Join(out, devKrb5ConfFile)
	// A cache beside krb5.conf, unless the output directory is one that others
	// share (a container volume): a credential cache belongs to one client.
	info.CCache = filepath.Join(out, "ccache")
	if out != dir {
		info.CCache = filepath.Join(os.TempDir(), "krb5cc_kerbkit")
	}
	info.Transports = []string{"udp", "tcp"}

	summary := e.stdout
	if o.json {
		summary = e.stderr
	}
	// An error once the sockets are bound (a file that cannot be written)
	// stops the server, and is what dev returns.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var readyErr error
	so := &serveOptions{listen: o.listen, logLevel: o.logLevel, kpasswdListen: o.kpasswdListen}
	ready := func(addr, realm string) {
		if so.boundKpasswd != "" {
			_, port, _ := net.SplitHostPort(so.boundKpasswd)
			info.KpasswdPort, _ = strconv.Atoi(port)
		}
		if readyErr = devReady(e, o, info, out, summary, addr, realm); readyErr != nil {
			cancel()
		}
	}
	if err := serve(ctx, e, so, ready); err != nil {
		return err
	}
	return readyErr
}

// devReady writes krb5.conf and realm.json for the bound address and tells
// the user (and, with --json, a program) that the realm is up.
func devReady(e *env, o *devOptions, info *devInfo, out string, summary io.Writer, addr, realm string) error {
	var err error
	info.Listen = addr
	if info.KDC, err = advertised(o.advertise, addr); err != nil {
		return err
	}
	host, port, _ := net.SplitHostPort(info.KDC)
	info.Host = host
	info.Port, _ = strconv.Atoi(port)
	info.Env = map[string]string{"KRB5_CONFIG": info.Krb5Conf, "KRB5CCNAME": "FILE:" + info.CCache}
	if info.Keytab != "" {
		info.Env["KRB5_KTNAME"] = "FILE:" + info.Keytab
	}
	if info.KpasswdPort != 0 {
		info.Kpasswd = net.JoinHostPort(host, strconv.Itoa(info.KpasswdPort))
	}
	if err := writeDevKrb5Conf(info.Krb5Conf, realm, info.KDC, info.Kpasswd); err != nil {
		return fmt.Errorf("kdc: writing %s: %w", info.Krb5Conf, err)
	}
	doc, err := json.Marshal(info)
	if err != nil {
		return fmt.Errorf("kdc: %w", err)
	}
	// realm.json holds the passwords: owner only, like the keytabs.
	if err := writeFileAtomic(filepath.Join(out, devInfoFile), append(doc, '\n'), 0o600); err != nil {
		return fmt.Errorf("kdc: writing %s: %w", devInfoFile, err)
	}
	printDevSummary(summary, info)
	if o.json {
		if _, err := fmt.Fprintf(e.stdout, "%s\n", doc); err != nil {
			return fmt.Errorf("kdc: %w", err)
		}
	}
	return nil
}

// printDevSummary tells a person what to type next.
func printDevSummary(w io.Writer, info *devInfo) {
	fmt.Fprintf(w, "Realm %s is up on %s (UDP and TCP).\n", info.Realm, info.KDC)
	if info.Kpasswd != "" {
		fmt.Fprintf(w, "Password changes (kpasswd, kclient passwd) on %s.\n", info.Kpasswd)
	}
	fmt.Fprintf(w, "  database   %s\n", info.DB)
	for _, u := range info.Users {
		fmt.Fprintf(w, "  user       %s  password: %s\n", u.Principal, u.Password)
	}
	byKeytab := map[string][]string{}
	for _, s := range info.Services {
		byKeytab[s.Keytab] = append(byKeytab[s.Keytab], s.Principal)
	}
	kts := make([]string, 0, len(byKeytab))
	for kt := range byKeytab {
		kts = append(kts, kt)
	}
	sort.Strings(kts)
	for _, kt := range kts {
		fmt.Fprintf(w, "  services   %s, keys in %s\n", strings.Join(byKeytab[kt], " and "), kt)
	}
	fmt.Fprintf(w, "  krb5.conf  %s (and %s for programs)\n", info.Krb5Conf, filepath.Join(info.Out, devInfoFile))
	fmt.Fprintf(w, "\nIn another terminal:\n  export KRB5_CONFIG=%s\n  export KRB5CCNAME=%s\n", info.Krb5Conf, info.Env["KRB5CCNAME"])
	if len(info.Users) > 0 {
		name := strings.TrimSuffix(info.Users[0].Principal, "@"+info.Realm)
		fmt.Fprintf(w, "  kclient login %s        # or MIT: kinit %s\n", name, name)
		fmt.Fprintf(w, "  kclient list            # or MIT: klist -f -e\n")
	}
	fmt.Fprintf(w, "\nPress Ctrl-C to stop.\n")
}

// advertised is the KDC address clients are told: --advertise (with the bound
// port when it names none), else the bound address, or this host's name when
// bound to every address (in a container: its hostname on the network).
func advertised(flag, bound string) (string, error) {
	_, port, err := net.SplitHostPort(bound)
	if err != nil {
		return "", fmt.Errorf("kdc: bound address %q: %w", bound, err)
	}
	if flag != "" {
		if err := checkAdvertise(flag); err != nil {
			return "", err
		}
		if _, _, err := net.SplitHostPort(flag); err == nil {
			return flag, nil
		}
		return net.JoinHostPort(strings.Trim(flag, "[]"), port), nil
	}
	host, _, _ := net.SplitHostPort(bound)
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if name, err := os.Hostname(); err == nil && name != "" {
			return net.JoinHostPort(name, port), nil
		}
	}
	return bound, nil
}

// checkAdvertise accepts HOST or HOST:PORT (an IPv6 host in brackets).
func checkAdvertise(s string) error {
	bad := fmt.Errorf("kdc: --advertise %q: want HOST or HOST:PORT", s)
	if h, p, err := net.SplitHostPort(s); err == nil {
		if n, perr := strconv.Atoi(p); h == "" || perr != nil || n <= 0 || n > 65535 {
			return bad
		}
		return nil
	}
	h := strings.Trim(s, "[]")
	if h == "" || strings.ContainsAny(h, " /@") || (strings.Contains(h, ":") && net.ParseIP(h) == nil) {
		return bad
	}
	return nil
}

// setupDevRealm creates the realm, or reuses the one in the directory, makes
// sure the users and services exist and writes the keytabs into out.
func setupDevRealm(ctx context.Context, e *env, o *devOptions, plan *devPlan, out string) (*devInfo, error) {
	var db *store.BoltStore
	var err error
	if _, statErr := os.Stat(e.db); statErr == nil {
		db, err = store.Open(e.db, store.OpenOptions{})
		if err == nil && o.realmSet && db.Realm() != o.realm {
			db.Close()
			return nil, fmt.Errorf("kdc: %s holds realm %s, not %s (use another --dir, or drop --realm)", e.db, db.Realm(), o.realm)
		}
		if err == nil && o.policySet {
			fmt.Fprintf(e.stderr, "kdc: reusing realm %s in %s: its lifetimes stay max life %v, max renew %v\n",
				db.Realm(), e.db, db.Policy().MaxLife, db.Policy().MaxRenew)
		}
	} else {
		db, err = store.Init(ctx, e.db, o.realm, principal.RealmPolicy{MaxLife: o.maxLife, MaxRenew: o.maxRenew}, time.Now())
	}
	if err != nil {
		if errors.Is(err, store.ErrInUse) {
			return nil, fmt.Errorf("kdc: %w; is another kdc using %s?", err, e.db)
		}
		return nil, err
	}
	defer db.Close()
	realm := db.Realm()
	info := &devInfo{Realm: realm, Keytabs: map[string]string{},
		MaxLife: int64(db.Policy().MaxLife / time.Second), MaxRenew: int64(db.Policy().MaxRenew / time.Second)}

	a := &kdc.LocalAdmin{Store: db}
	// kadmin/changepw: the kpasswd service's principal (new databases get it
	// from store.Init; older dev directories may lack it).
	if _, err := db.Get(ctx, principal.Name{Realm: realm, Components: []string{"kadmin", "changepw"}}); errors.Is(err, principal.ErrNotFound) {
		if _, err := a.Add(ctx, kdc.AddRequest{Name: "kadmin/changepw", RandomKey: true, Enctypes: plan.enctypes}); err != nil && !errors.Is(err, principal.ErrExists) {
			return nil, err
		}
	}
	add := func(req kdc.AddRequest) (string, error) {
		req.Enctypes = plan.enctypes
		pi, err := a.Add(ctx, req)
		if errors.Is(err, principal.ErrExists) {
			n, perr := principal.Parse(req.Name, realm)
			if perr != nil {
				return "", perr
			}
			fmt.Fprintf(e.stderr, "kdc: %s exists in %s; kept as it is\n", n, e.db)
			return n.String(), nil
		}
		return pi.Name, err
	}
	for _, u := range plan.users {
		name, err := add(kdc.AddRequest{Name: u.name, Password: u.password})
		if err != nil {
			return nil, err
		}
		info.Users = append(info.Users, devInfoUser{Principal: name, Password: u.password})
	}
	if len(info.Users) > 0 {
		info.User, info.Password = info.Users[0].Principal, info.Users[0].Password
	}
	keytabs := map[string][]string{}
	var order []string
	for _, s := range plan.services {
		name, err := add(kdc.AddRequest{Name: s.name, RandomKey: true})
		if err != nil {
			return nil, err
		}
		path := filepath.Join(out, s.keytab)
		info.Services = append(info.Services, devInfoService{Principal: name, Keytab: path})
		if _, ok := keytabs[path]; !ok {
			order = append(order, path)
		}
		keytabs[path] = append(keytabs[path], s.name)
	}
	for i, path := range order {
		entries, err := a.Keytab(ctx, keytabs[path])
		if err != nil {
			return nil, err
		}
		if err := ticket.WriteKeytabFile(path, entries); err != nil {
			return nil, err
		}
		info.Keytabs[filepath.Base(path)] = path
		if i == 0 {
			info.Keytab = path
		}
	}
	return info, nil
}

// writeDevKrb5Conf writes a krb5.conf that MIT, Heimdal, Java and kclient all read
// (interop-peers.md §1.1): no DNS lookups for KDCs or realms, no reverse lookups,
// no canonicalization, and localhost plus the realm's own DNS domain (the realm
// name in lower case, e.g. www.kerbkit.test for KERBKIT.TEST) in the realm.
func writeDevKrb5Conf(path, realm, kdcAddr, kpasswdAddr string) error {
	domain := strings.ToLower(realm)
	// kpasswd_server is where MIT kpasswd and kinit (an expired password)
	// send password changes; admin_server is their fallback (port 464).
	var kpasswd string
	if kpasswdAddr != "" {
		kpasswd = "\n        kpasswd_server = " + kpasswdAddr + "\n        admin_server = " + kpasswdAddr
	}
	conf := fmt.Sprintf(`# written by kdc dev
[libdefaults]
    default_realm = %[1]s
    dns_lookup_kdc = false
    dns_lookup_realm = false
    rdns = false
    dns_canonicalize_hostname = false
    udp_preference_limit = 1465
    forwardable = true

[realms]
    %[1]s = {
        kdc = %[2]s%[4]s
    }

[domain_realm]
    localhost = %[1]s
    .%[3]s = %[1]s
    %[3]s = %[1]s
`, realm, kdcAddr, domain, kpasswd)
	return writeFileAtomic(path, []byte(conf), 0o644)
}

// writeFileAtomic writes data to a temporary file beside path and renames it
// into place, so a reader sees the old file or the whole new one.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
