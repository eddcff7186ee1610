package gitremote

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/obol/obol/internal/gittest"
)

const (
	testUser  = "obol-bot"
	testToken = "tok-Wr1te-5ecret-4f9a"
	roToken   = "tok-Re4d-0nly-77b1"
)

func tokenFile(t *testing.T, token string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// noSecret fails the test if err's text contains a secret.
func noSecret(t *testing.T, err error, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Fatalf("error text contains a secret: %v", err)
		}
	}
}

func TestHTTP(t *testing.T) {
	root := t.TempDir()
	srv := gittest.StartHTTP(t, root, gittest.HTTPOptions{Username: testUser, Token: testToken, ReadOnlyToken: roToken})
	runScenarios(t, server{
		root: root,
		url:  srv.RepoURL,
		auth: AuthOptions{TokenFile: tokenFile(t, testToken), Username: testUser, Getenv: envMap(nil), NoCredentialHelper: true},
	})
}

func TestHTTPAnonymous(t *testing.T) {
	root := t.TempDir()
	srv := gittest.StartHTTP(t, root, gittest.HTTPOptions{})
	runScenarios(t, server{root: root, url: srv.RepoURL, auth: noEnv()})
}

func TestHTTPAuth(t *testing.T) {
	root := t.TempDir()
	srv := gittest.StartHTTP(t, root, gittest.HTTPOptions{Username: testUser, Token: testToken, ReadOnlyToken: roToken})
	_, hs := seed(t, root, "r.git", 2)
	url := srv.RepoURL("r.git")

	ok := func(t *testing.T, rm Remote) {
		t.Helper()
		ctx := testCtx(t)
		h, err := Head(ctx, rm, "main")
		if err != nil || h != hs[1] {
			t.Fatalf("Head = %s, %v; want %s", h, err, hs[1])
		}
		work := initWork(t)
		if h, err := Fetch(ctx, gitDir(work), rm, "main", nil); err != nil || h != hs[1] {
			t.Fatalf("Fetch = %s, %v", h, err)
		}
		gittest.Fsck(t, work)
	}

	t.Run("EnvToken", func(t *testing.T) {
		ok(t, Remote{URL: url, Auth: AuthOptions{NoCredentialHelper: true, Getenv: envMap(map[string]string{
			EnvToken: testToken, EnvUsername: testUser,
		})}})
	})
	t.Run("EnvTokenFile", func(t *testing.T) {
		ok(t, Remote{URL: url, Auth: AuthOptions{NoCredentialHelper: true, Getenv: envMap(map[string]string{
			EnvTokenFile: tokenFile(t, testToken), EnvUsername: testUser,
		})}})
	})
	t.Run("TokenFileWinsOverEnv", func(t *testing.T) {
		ok(t, Remote{URL: url, Auth: AuthOptions{TokenFile: tokenFile(t, testToken), Username: testUser, NoCredentialHelper: true,
			Getenv: envMap(map[string]string{EnvToken: "wrong-token-xyz"})}})
	})
	t.Run("URLUserinfo", func(t *testing.T) {
		u := strings.Replace(url, "http://", "http://"+testUser+":"+testToken+"@", 1)
		ok(t, Remote{URL: u, Auth: noEnv()})
		// A wrong password in the URL: ErrAuth, and the URL is redacted.
		bad := strings.Replace(url, "http://", "http://"+testUser+":wrong-pass-123@", 1)
		_, err := Head(testCtx(t), Remote{URL: bad, Auth: noEnv()}, "main")
		if !errors.Is(err, ErrAuth) {
			t.Fatalf("Head = %v; want ErrAuth", err)
		}
		noSecret(t, err, "wrong-pass-123")
		t.Logf("bad URL password: %v", err)
	})

	t.Run("WrongToken", func(t *testing.T) {
		ctx := testCtx(t)
		const wrong = "tok-Wr0ng-5ecret-0000"
		rm := Remote{URL: url, Auth: AuthOptions{Username: testUser, NoCredentialHelper: true, Getenv: envMap(map[string]string{EnvToken: wrong})}}
		_, err := Head(ctx, rm, "main")
		if !errors.Is(err, ErrAuth) {
			t.Fatalf("Head = %v; want ErrAuth", err)
		}
		noSecret(t, err, wrong, testToken)
		if !strings.Contains(err.Error(), EnvToken) {
			t.Fatalf("ErrAuth does not say what was tried: %v", err)
		}
		work := initWork(t)
		_, err = Fetch(ctx, gitDir(work), rm, "main", nil)
		if !errors.Is(err, ErrAuth) {
			t.Fatalf("Fetch = %v; want ErrAuth", err)
		}
		noSecret(t, err, wrong)
		c := commit(t, work, map[string]string{"x": "x"}, "x")
		err = Push(ctx, gitDir(work), rm, "main", hs[1], c)
		if !errors.Is(err, ErrAuth) {
			t.Fatalf("Push = %v; want ErrAuth", err)
		}
		noSecret(t, err, wrong)
		t.Logf("wrong token: %v", err)
	})

	t.Run("NoCredentials", func(t *testing.T) {
		_, err := Head(testCtx(t), Remote{URL: url, Auth: noEnv()}, "main")
		if !errors.Is(err, ErrAuth) {
			t.Fatalf("Head = %v; want ErrAuth", err)
		}
		t.Logf("no credentials: %v", err)
	})

	t.Run("ReadOnlyTokenCannotPush", func(t *testing.T) {
		ctx := testCtx(t)
		rm := Remote{URL: url, Auth: AuthOptions{Username: testUser, NoCredentialHelper: true, Getenv: envMap(map[string]string{EnvToken: roToken})}}
		work := initWork(t)
		if _, err := Fetch(ctx, gitDir(work), rm, "main", nil); err != nil {
			t.Fatalf("read-only Fetch: %v", err)
		}
		gittest.Git(t, work, nil, "reset", "--quiet", "--hard", hs[1].String())
		c := commit(t, work, map[string]string{"x": "x"}, "x")
		pushesBefore := srv.Pushes.Load()
		err := Push(ctx, gitDir(work), rm, "main", hs[1], c)
		if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "403") {
			t.Fatalf("Push = %v; want ErrAuth (403)", err)
		}
		noSecret(t, err, roToken)
		if srv.Pushes.Load() != pushesBefore {
			t.Fatal("the refused push reached git-receive-pack")
		}
		t.Logf("read-only token push: %v", err)
	})

	t.Run("CredentialHelper", func(t *testing.T) {
		ctx := testCtx(t)
		dir := t.TempDir()
		store := filepath.Join(dir, "creds")
		cfg := filepath.Join(dir, "gitconfig")
		if err := os.WriteFile(cfg, []byte("[credential]\n\thelper = store --file="+store+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		env := envMap(map[string]string{"GIT_CONFIG_GLOBAL": cfg, "GIT_CONFIG_NOSYSTEM": "1", "HOME": dir})
		rm := Remote{URL: url, Auth: AuthOptions{Getenv: env}}

		// Nothing stored: the helper has nothing, ErrAuth says so.
		_, err := Head(ctx, rm, "main")
		if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "credential helper") {
			t.Fatalf("Head with an empty store = %v; want ErrAuth mentioning the helper", err)
		}
		t.Logf("empty credential store: %v", err)

		// Stored credentials are used.
		line := strings.Replace(srv.URL, "http://", "http://"+testUser+":"+testToken+"@", 1) + "\n"
		if err := os.WriteFile(store, []byte(line), 0o600); err != nil {
			t.Fatal(err)
		}
		ok(t, rm)
		work := initWork(t)
		if _, err := Fetch(ctx, gitDir(work), rm, "main", nil); err != nil {
			t.Fatal(err)
		}
		gittest.Git(t, work, nil, "reset", "--quiet", "--hard", hs[1].String())
		c := commit(t, work, map[string]string{"helper.txt": "h"}, "via helper")
		if err := Push(ctx, gitDir(work), rm, "main", hs[1], c); err != nil {
			t.Fatalf("Push with helper credentials: %v", err)
		}
		hs = append(hs, c) // the remote moved on
		if b, _ := os.ReadFile(store); !strings.Contains(string(b), testToken) {
			t.Fatalf("approved credentials are gone from the store: %q", b)
		}

		// Wrong stored credentials are rejected (erased from the store).
		bad := strings.Replace(srv.URL, "http://", "http://"+testUser+":stale-Pa55-9999@", 1) + "\n"
		if err := os.WriteFile(store, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err = Head(ctx, rm, "main")
		if !errors.Is(err, ErrAuth) {
			t.Fatalf("Head with wrong stored credentials = %v; want ErrAuth", err)
		}
		noSecret(t, err, "stale-Pa55-9999")
		if b, _ := os.ReadFile(store); strings.Contains(string(b), "stale-Pa55-9999") {
			t.Fatalf("rejected credentials are still stored: %q", b)
		}
		t.Logf("wrong stored credentials: %v", err)
	})
}

func TestHTTPNotGit(t *testing.T) {
	root := t.TempDir()
	srv := gittest.StartHTTP(t, root, gittest.HTTPOptions{})
	_, err := Head(testCtx(t), Remote{URL: srv.URL + "/nothing-here.git", Auth: noEnv()}, "main")
	if err == nil {
		t.Fatal("Head on a missing repository succeeded")
	}
	t.Logf("missing repository over HTTP: %v", err)
	_ = plumbing.ZeroHash
}
