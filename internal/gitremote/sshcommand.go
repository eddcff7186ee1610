package gitremote

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kevinburke/ssh_config"
)

// sshCommand is git's GIT_SSH_COMMAND (a shell command line), else GIT_SSH (a program), as
// git reads them: when either is set, obol runs it as git would, so whatever that ssh does
// (~/.ssh/config, ProxyJump, a hardware key, a jump host's agent) applies.
func (o *AuthOptions) sshCommand() (cmd string, shell bool) {
	if c := o.getenv("GIT_SSH_COMMAND"); strings.TrimSpace(c) != "" {
		return c, true
	}
	if c := o.getenv("GIT_SSH"); c != "" {
		return c, false
	}
	return "", false
}

// openSSHCommand runs `<ssh> [-p PORT] [USER@]HOST "git-upload-pack '/path'"` as git does
// and speaks the protocol over its stdin and stdout.
func openSSHCommand(ctx context.Context, c *conn, service, command string, shell bool) (session, error) {
	ep := c.ep.ep
	var args []string
	if ep.Port != 0 && ep.Port != 22 {
		args = append(args, "-p", strconv.Itoa(ep.Port))
	}
	host := ep.Host
	if ep.User != "" {
		host = ep.User + "@" + host
	}
	args = append(args, host, service+" '"+strings.ReplaceAll(ep.Path, "'", `'\''`)+"'")
	var cmd *exec.Cmd
	if shell {
		// As git: the command line is run by the shell with the arguments appended.
		cmd = exec.Command("sh", append([]string{"-c", command + ` "$@"`, command}, args...)...)
	} else {
		cmd = exec.Command(command, args...)
	}
	return startProc(ctx, c, cmd, "GIT_SSH_COMMAND/GIT_SSH: ")
}

// sshHostConfig is what ~/.ssh/config (then /etc/ssh/ssh_config) says of an ssh host alias,
// read with kevinburke/ssh_config (go-git's choice): the settings obol's own ssh client honours.
type sshHostConfig struct {
	HostName   string
	Port       int
	User       string
	Identities []string
}

func (o *AuthOptions) sshHostConfig(alias string) (sshHostConfig, error) {
	var out sshHostConfig
	var files []string
	if home := o.home(); home != "" {
		files = append(files, filepath.Join(home, ".ssh", "config"))
	}
	files = append(files, "/etc/ssh/ssh_config")
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		cfg, err := ssh_config.Decode(f)
		f.Close()
		if err != nil {
			return out, fmt.Errorf("%s: %w", p, err)
		}
		get := func(key string) string { v, _ := cfg.Get(alias, key); return v }
		for _, key := range []string{"ProxyJump", "ProxyCommand"} {
			if v := get(key); v != "" && !strings.EqualFold(v, "none") {
				return out, fmt.Errorf("%s: Host %s uses %s, which obol's ssh client does not speak: "+
					"set GIT_SSH_COMMAND=ssh and obol runs your ssh as git does", p, alias, key)
			}
		}
		if out.HostName == "" {
			out.HostName = strings.ReplaceAll(get("HostName"), "%h", alias)
		}
		if out.Port == 0 {
			if v := get("Port"); v != "" {
				n, err := strconv.Atoi(v)
				if err != nil || n < 1 || n > 65535 {
					return out, fmt.Errorf("%s: Host %s: Port %q is not a port", p, alias, v)
				}
				out.Port = n
			}
		}
		if out.User == "" {
			out.User = get("User")
		}
		if ids, _ := cfg.GetAll(alias, "IdentityFile"); len(out.Identities) == 0 {
			for _, id := range ids {
				if strings.HasPrefix(id, "~/") {
					id = filepath.Join(o.home(), id[2:])
				}
				out.Identities = append(out.Identities, id)
			}
		}
	}
	return out, nil
}
