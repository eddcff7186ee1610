package gittest

import (
	"io"
	"net/http"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// Cleanup must not hang on clients that stall mid-conversation, and must
// not leave git processes behind.
func TestCleanupWithStalledClients(t *testing.T) {
	needGit(t)
	t.Parallel()

	var sess *ssh.Session
	var client *ssh.Client
	var sessDone, httpDone chan error
	stdinR, stdinW := io.Pipe()
	bodyR, bodyW := io.Pipe()
	// Closed only after the servers' cleanup has run.
	defer stdinW.Close()
	start := time.Now()
	t.Run("servers", func(t *testing.T) {
		root := t.TempDir()
		InitBare(t, root, "stack.git", "main")

		// SSH: upload-pack waiting for a request that never comes.
		ss := StartSSH(t, root)
		var err error
		if client, err = dial(ss); err != nil {
			t.Fatal(err)
		}
		if sess, err = client.NewSession(); err != nil {
			t.Fatal(err)
		}
		sess.Stdin = stdinR
		stdout, err := sess.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := sess.Start(`git-upload-pack '/stack.git'`); err != nil {
			t.Fatal(err)
		}
		// The advertisement proves git is running.
		if _, err := io.ReadFull(stdout, make([]byte, 4)); err != nil {
			t.Fatal(err)
		}
		sessDone = make(chan error, 1)
		go func() {
			io.Copy(io.Discard, stdout)
			sessDone <- sess.Wait()
		}()

		// HTTP: a push whose body stops halfway.
		hs := StartHTTP(t, root, HTTPOptions{})
		req, err := http.NewRequest("POST", hs.RepoURL("stack.git")+"/git-receive-pack", bodyR)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = 1 << 20
		req.Header.Set("Content-Type", "application/x-git-receive-pack-request")
		httpDone = make(chan error, 1)
		go func() {
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			httpDone <- err
		}()
		go bodyW.Write([]byte("0000"))
		for deadline := time.Now().Add(5 * time.Second); hs.Requests.Load() == 0; {
			if time.Now().After(deadline) {
				t.Fatal("push request never reached the server")
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond) // the server is now blocked reading the body
	})
	if client != nil {
		defer client.Close()
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cleanup took %s", d)
	}
	select {
	case err := <-sessDone:
		t.Logf("ssh session after cleanup: %v", err)
	case <-time.After(5 * time.Second):
		t.Errorf("ssh session still open after cleanup")
	}
	bodyW.CloseWithError(io.ErrUnexpectedEOF) // let the client give up writing
	select {
	case err := <-httpDone:
		t.Logf("http request after cleanup: %v", err)
	case <-time.After(5 * time.Second):
		t.Errorf("http request still open after cleanup")
	}
}
