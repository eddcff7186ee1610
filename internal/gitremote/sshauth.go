package gitremote

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// sshAuth is the client side of one SSH connection: user, keys, and the
// strict host key check.
type sshAuth struct {
	user    string
	signers []ssh.Signer
	tried   []string // key sources, for the ErrAuth message
	closers []io.Closer

	knownHosts []string // files read
	addTo      string   // the file the fix should append to
	hostKeyCB  ssh.HostKeyCallback
	host       string // as in the URL without brackets, or ~/.ssh/config's HostName for it
	port       int
	configKeys []string // ~/.ssh/config's IdentityFile for the host

	mu         sync.Mutex
	hostKeyErr error
}

func (a *sshAuth) close() {
	for _, c := range a.closers {
		_ = c.Close()
	}
}

// newSSHAuth gathers the keys to offer and the known_hosts files.
// Keys: AuthOptions.SSHKeyFile, else OBOL_SSH_KEY, else the ssh agent at
// SSH_AUTH_SOCK plus ~/.ssh/id_ed25519, id_ecdsa and id_rsa (those that
// exist and are not passphrase-protected), in that order, the way ssh
// offers them.
func newSSHAuth(o *AuthOptions, host string, port int, urlUser string) (*sshAuth, error) {
	a := &sshAuth{user: urlUser, host: strings.Trim(host, "[]"), port: port}
	// ~/.ssh/config: a host alias, its port, user and keys, as ssh (and git through it) reads them.
	hc, err := o.sshHostConfig(a.host)
	if err != nil {
		return nil, err
	}
	if hc.HostName != "" {
		a.host = hc.HostName
	}
	if a.port == 0 {
		a.port = hc.Port
	}
	if a.port == 0 {
		a.port = 22
	}
	if a.user == "" {
		a.user = hc.User
	}
	a.configKeys = hc.Identities
	if a.user == "" {
		// Like ssh: the local user name.
		a.user = o.getenv("USER")
		if a.user == "" {
			if u, err := user.Current(); err == nil {
				a.user = u.Username
			}
		}
	}
	if err := a.loadKeys(o); err != nil {
		a.close()
		return nil, err
	}
	if err := a.loadKnownHosts(o); err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}

func (a *sshAuth) loadKeys(o *AuthOptions) error {
	explicit, source := o.SSHKeyFile, "the ssh key file "+o.SSHKeyFile
	if explicit == "" && o.getenv(EnvSSHKey) != "" {
		explicit = o.getenv(EnvSSHKey)
		source = EnvSSHKey + " (" + explicit + ")"
	}
	if explicit != "" {
		s, err := loadKey(explicit)
		if err != nil {
			var pe *ssh.PassphraseMissingError
			if errors.As(err, &pe) {
				return fmt.Errorf("%w: %s is passphrase-protected, and obol cannot ask for the passphrase: load it into ssh-agent (`ssh-add %s`) and leave %s unset, or use an unencrypted deploy key", ErrAuth, source, explicit, EnvSSHKey)
			}
			return fmt.Errorf("%s: %w", source, err)
		}
		a.signers = []ssh.Signer{s}
		a.tried = []string{fmt.Sprintf("%s (%s)", source, fingerprint(s))}
		return nil
	}

	seen := map[string]bool{}
	if sock := o.getenv("SSH_AUTH_SOCK"); sock != "" {
		conn, err := net.DialTimeout("unix", sock, 5*time.Second)
		if err != nil {
			a.tried = append(a.tried, "ssh-agent at SSH_AUTH_SOCK (unreachable: "+errText(err)+")")
		} else {
			a.closers = append(a.closers, conn)
			signers, err := agent.NewClient(conn).Signers()
			if err != nil {
				a.tried = append(a.tried, "ssh-agent at SSH_AUTH_SOCK ("+errText(err)+")")
			} else {
				for _, s := range signers {
					seen[string(s.PublicKey().Marshal())] = true
				}
				a.signers = append(a.signers, signers...)
				a.tried = append(a.tried, fmt.Sprintf("ssh-agent at SSH_AUTH_SOCK (%d keys)", len(signers)))
			}
		}
	} else {
		a.tried = append(a.tried, "no ssh-agent (SSH_AUTH_SOCK unset)")
	}
	if home := o.home(); home != "" || len(a.configKeys) > 0 {
		found := false
		candidates := a.configKeys
		if home != "" {
			for _, name := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
				candidates = append(candidates, filepath.Join(home, ".ssh", name))
			}
		}
		for _, p := range candidates {
			if _, err := os.Stat(p); err != nil {
				continue
			}
			found = true
			s, err := loadKey(p)
			var pe *ssh.PassphraseMissingError
			switch {
			case errors.As(err, &pe):
				a.tried = append(a.tried, p+" (passphrase-protected, skipped: add it to ssh-agent)")
			case err != nil:
				a.tried = append(a.tried, p+" (unreadable: "+errText(err)+")")
			case seen[string(s.PublicKey().Marshal())]:
			default:
				seen[string(s.PublicKey().Marshal())] = true
				a.signers = append(a.signers, s)
				a.tried = append(a.tried, fmt.Sprintf("%s (%s)", p, fingerprint(s)))
			}
		}
		if !found {
			a.tried = append(a.tried, "no "+filepath.Join(home, ".ssh", "id_{ed25519,ecdsa,rsa}"))
		}
	}
	if len(a.signers) == 0 {
		return fmt.Errorf("%w: no SSH key to offer to %s; tried: %s. %s", ErrAuth, a.hostPort(), strings.Join(a.tried, "; "), sshKeyFix)
	}
	return nil
}

const sshKeyFix = "Fix: pass a private key whose public key the server accepts (with write access, to push) with --ssh-key or " + EnvSSHKey + ", or load it into ssh-agent (`ssh-add KEY`)"

func loadKey(p string) (ssh.Signer, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	return ssh.ParsePrivateKey(b)
}

func fingerprint(s ssh.Signer) string {
	return s.PublicKey().Type() + " " + ssh.FingerprintSHA256(s.PublicKey())
}

// errText is err's message for a note inside another message.
func errText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// loadKnownHosts picks the known_hosts files: AuthOptions.KnownHostsFile,
// else SSH_KNOWN_HOSTS (a list like PATH), else ~/.ssh/known_hosts and
// /etc/ssh/ssh_known_hosts. Host keys are always checked strictly: an
// unknown host is an error, never trusted on first use.
func (a *sshAuth) loadKnownHosts(o *AuthOptions) error {
	var files []string
	switch {
	case o.KnownHostsFile != "":
		if _, err := os.Stat(o.KnownHostsFile); err != nil {
			return fmt.Errorf("known_hosts file: %w", err)
		}
		files = []string{o.KnownHostsFile}
		a.addTo = o.KnownHostsFile
	case o.getenv("SSH_KNOWN_HOSTS") != "":
		for _, f := range filepath.SplitList(o.getenv("SSH_KNOWN_HOSTS")) {
			if f == "" {
				continue
			}
			if _, err := os.Stat(f); err != nil {
				return fmt.Errorf("SSH_KNOWN_HOSTS: %w", err)
			}
			files = append(files, f)
		}
		if len(files) > 0 {
			a.addTo = files[0]
		}
	default:
		a.addTo = "~/.ssh/known_hosts"
		var cands []string
		if home := o.home(); home != "" {
			cands = append(cands, filepath.Join(home, ".ssh", "known_hosts"))
		}
		cands = append(cands, "/etc/ssh/ssh_known_hosts")
		for _, f := range cands {
			if _, err := os.Stat(f); err == nil {
				files = append(files, f)
			}
		}
		if len(files) == 0 {
			a.knownHosts = cands // for the message
		}
	}
	cb, err := knownhosts.New(files...)
	if err != nil {
		return fmt.Errorf("read known_hosts: %w", err)
	}
	if len(files) > 0 {
		a.knownHosts = files
	}
	a.hostKeyCB = cb
	return nil
}

func (a *sshAuth) hostPort() string {
	return net.JoinHostPort(a.host, strconv.Itoa(a.port))
}

// checkHostKey is the HostKeyCallback: knownhosts, with errors that name
// the files and the fix.
func (a *sshAuth) checkHostKey(hostname string, remote net.Addr, key ssh.PublicKey) error {
	err := a.hostKeyCB(hostname, remote, key)
	if err == nil {
		return nil
	}
	files := strings.Join(a.knownHosts, ", ")
	got := key.Type() + " " + ssh.FingerprintSHA256(key)
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case errors.As(err, &ke) && len(ke.Want) == 0:
		err = fmt.Errorf("%w: the SSH host key of %s (%s) is not in known_hosts (read: %s). Check the fingerprint with the server's owner, then add it: ssh-keyscan -p %d %s >> %s (or point --known-hosts or SSH_KNOWN_HOSTS at a file that has it)",
			ErrHostKey, a.hostPort(), got, files, a.port, a.host, a.addTo)
	case errors.As(err, &ke):
		var want []string
		for _, k := range ke.Want {
			want = append(want, fmt.Sprintf("%s %s (%s:%d)", k.Key.Type(), ssh.FingerprintSHA256(k.Key), k.Filename, k.Line))
		}
		err = fmt.Errorf("%w: the SSH host key of %s changed: it offered %s, known_hosts has %s. This may be a man-in-the-middle attack. If the server's key legitimately changed, remove the old entry (ssh-keygen -R '[%s]:%d' -f FILE) and add the new one (ssh-keyscan -p %d %s >> %s)",
			ErrHostKey, a.hostPort(), got, strings.Join(want, ", "), a.host, a.port, a.port, a.host, a.addTo)
	case errors.As(err, &re):
		err = fmt.Errorf("%w: the SSH host key of %s (%s) is revoked in %s:%d", ErrHostKey, a.hostPort(), got, re.Revoked.Filename, re.Revoked.Line)
	default:
		// The cause's text only: no chain to anything but ErrHostKey (see errors.go).
		err = fmt.Errorf("%w: %s: %s", ErrHostKey, a.hostPort(), err.Error())
	}
	a.mu.Lock()
	a.hostKeyErr = err
	a.mu.Unlock()
	return err
}

var (
	probeOnce sync.Once
	probeKey  ssh.PublicKey
)

// hostKeyAlgorithms lists the algorithms of the keys known_hosts has for
// this host, so the server is asked for a key we can check (otherwise a
// server with several host keys may present one of a type we do not know
// and fail as a mismatch). Nil when the host is unknown or only trusted
// through a @cert-authority line: the defaults apply then.
func (a *sshAuth) hostKeyAlgorithms(hostname string, remote net.Addr) []string {
	probeOnce.Do(func() {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err == nil {
			probeKey, _ = ssh.NewPublicKey(pub)
		}
	})
	if probeKey == nil {
		return nil
	}
	var ke *knownhosts.KeyError
	if err := a.hostKeyCB(hostname, remote, probeKey); !errors.As(err, &ke) || len(ke.Want) == 0 {
		return nil
	}
	var algos []string
	add := func(as ...string) {
		for _, x := range as {
			if !contains(algos, x) {
				algos = append(algos, x)
			}
		}
	}
	for _, k := range ke.Want {
		switch t := k.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			add(ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		default:
			add(t)
		}
	}
	return algos
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// clientConfig is the ssh.ClientConfig for one connection.
func (a *sshAuth) clientConfig(hostname string, remote net.Addr) *ssh.ClientConfig {
	return &ssh.ClientConfig{
		User:              a.user,
		Auth:              []ssh.AuthMethod{ssh.PublicKeysCallback(func() ([]ssh.Signer, error) { return a.signers, nil })},
		HostKeyCallback:   a.checkHostKey,
		HostKeyAlgorithms: a.hostKeyAlgorithms(hostname, remote),
		ClientVersion:     "SSH-2.0-obol",
	}
}

// handshakeError maps an ssh handshake failure to ErrHostKey or ErrAuth.
func (a *sshAuth) handshakeError(err error) error {
	a.mu.Lock()
	hk := a.hostKeyErr
	a.mu.Unlock()
	if hk != nil {
		return hk
	}
	if strings.Contains(err.Error(), "unable to authenticate") {
		return fmt.Errorf("%w: the SSH server %s accepted none of the keys offered for user %q; tried: %s. %s",
			ErrAuth, a.hostPort(), a.user, strings.Join(a.tried, "; "), sshKeyFix)
	}
	return fmt.Errorf("ssh %s: %w", a.hostPort(), err)
}
