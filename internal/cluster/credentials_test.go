package cluster

import "testing"

// The two reconcilers read credentials from differently shaped Secrets: Flux from the
// GitRepository's secretRef (username/password or identity/known_hosts, in flux-system), Argo CD
// from any Secret in its namespace labelled as a repository, matched by url.
func TestGitCredentialsSecret(t *testing.T) {
	url := "https://git.example.com/team/stack.git"
	tok := GitCredentials{Username: "git", Password: []byte("t0k")}
	key := GitCredentials{SSHKey: []byte("KEY"), KnownHosts: []byte("git.example.com ssh-ed25519 AAAA")}

	s := GitCredentialsSecret(false, "obol-git-credentials", url, tok)
	if s.Namespace != Namespace || string(s.Data["username"]) != "git" || string(s.Data["password"]) != "t0k" || len(s.Data) != 2 {
		t.Errorf("flux token Secret: %s %v", s.Namespace, s.Data)
	}
	s = GitCredentialsSecret(false, "obol-git-credentials", url, key)
	if string(s.Data["identity"]) != "KEY" || string(s.Data["known_hosts"]) == "" || len(s.Data) != 2 {
		t.Errorf("flux deploy-key Secret: %v", s.Data)
	}
	s = GitCredentialsSecret(true, "obol-git-credentials", url, tok)
	if s.Namespace != "argocd" || s.Labels["argocd.argoproj.io/secret-type"] != "repository" || string(s.Data["url"]) != url ||
		string(s.Data["type"]) != "git" || string(s.Data["password"]) != "t0k" {
		t.Errorf("argo token Secret: %s %v %v", s.Namespace, s.Labels, s.Data)
	}
	s = GitCredentialsSecret(true, "obol-git-credentials", url, key)
	if string(s.Data["sshPrivateKey"]) != "KEY" || s.Data["password"] != nil {
		t.Errorf("argo deploy-key Secret: %v", s.Data)
	}
}
