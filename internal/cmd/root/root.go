// Package root assembles the obol command tree.
package root

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/obol/obol/internal/cmd/cmdutil"
	gatewaycmd "github.com/obol/obol/internal/cmd/gateway"
	"github.com/obol/obol/internal/cmd/importcmd"
	"github.com/obol/obol/internal/cmd/logcmd"
	rendercmd "github.com/obol/obol/internal/cmd/render"
	"github.com/obol/obol/internal/cmd/rollback"
	"github.com/obol/obol/internal/cmd/sell"
	"github.com/obol/obol/internal/cmd/stack"
	"github.com/obol/obol/internal/cmd/synccmd"
	validatecmd "github.com/obol/obol/internal/cmd/validate"
	"github.com/obol/obol/internal/cmd/version"
	"github.com/obol/obol/internal/secretscan"
)

// NewCmdRoot returns `obol` with every command.
func NewCmdRoot(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "obol",
		Short: "Sell HTTP APIs and LLM inference behind x402 payments, the GitOps way",
		Long: `obol keeps a stack's whole desired state in one git repo: every offer is a slice of it,
committed by this CLI, and a reconciler in the cluster (Flux or Argo CD) makes the cluster match.
obol never applies anything to a cluster by hand and runs nothing on this machine.

The stack repo is the one you are in, as with git (else --repo, then $OBOL_REPO, then
$XDG_DATA_HOME/obol/stack).

Environment:
  OBOL_REPO                    the stack repo
  X402_WALLET                  the default --pay-to of a new offer
  GIT_AUTHOR_NAME/_EMAIL       the commit author (else git config; obol refuses to commit without one)
  OBOL_GIT_TOKEN, OBOL_GIT_TOKEN_FILE, OBOL_GIT_USERNAME
                               HTTPS credentials for a shared remote (else git's credential helpers)
  OBOL_SSH_KEY, SSH_AUTH_SOCK, SSH_KNOWN_HOSTS
                               SSH credentials and host keys (~/.ssh/config applies)
  GIT_SSH_COMMAND, GIT_SSH     run this ssh for SSH remotes, as git does
  GIT_SSL_CAINFO               CA bundle for HTTPS remotes (else git's http.sslCAInfo; http.proxy applies)
  KUBECONFIG                   the cluster, as kubectl finds it
  OBOL_NO_K3D                  never create a local k3d cluster in stack up
  OBOL_TUNNEL_TOKEN            the Cloudflare tunnel's token for stack up`,
		Example: cmdutil.Examples(`obol stack init --stack dev
obol sell http weather --upstream weather-api --namespace apps --port 8080 \
    --per-request 0.001 --pay-to 0x8ba1f109551bD432803012645Ac136ddd64DBA72 --chain base-sepolia
obol sell list
obol validate`),
	}
	cmdutil.SetupRoot(cmd, f, version.Version)
	cmd.AddCommand(stack.NewCmdStack(f))
	cmd.AddCommand(sell.NewCmdSell(f))
	cmd.AddCommand(rendercmd.NewCmdRender(f, nil))
	cmd.AddCommand(validatecmd.NewCmdValidate(f, nil))
	cmd.AddCommand(gatewaycmd.NewCmdGateway(f))
	cmd.AddCommand(importcmd.NewCmdImport(f, nil))
	cmd.AddCommand(synccmd.NewCmdSync(f, nil))
	cmd.AddCommand(logcmd.NewCmdLog(f, nil))
	cmd.AddCommand(rollback.NewCmdRollback(f, nil))
	cmd.AddCommand(version.NewCmdVersion(f))
	return cmd
}

// Secrets is the secret scanner a Factory's writes go through: secretscan's.
func Secrets() (cmdutil.SecretScanner, error) { return secretscan.Default() }

// Run executes the command tree with args, as the obol binary does: an error is printed to
// f.IO.ErrOut unless the command already reported it, and mapped to the exit code.
func Run(ctx context.Context, f *cmdutil.Factory, args []string) int {
	return cmdutil.Execute(ctx, f, NewCmdRoot(f), args)
}
