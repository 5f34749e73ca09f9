package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// completionShells are the shells `ares completion` writes scripts for.
var completionShells = []string{"bash", "zsh", "fish"}

func newCompletionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print the shell completion script for bash, zsh or fish",
		Long: `completion prints a script that makes your shell complete ares's commands, flags and
flag values (--output json, ...). Load it in the current shell or install it once; the script
asks the ares binary on your PATH what to complete, so it follows upgrades by itself.

bash needs the bash-completion package (apt install bash-completion). zsh needs compinit
(autoload -U compinit; compinit in ~/.zshrc).`,
		Example: `  # bash, this shell only
  source <(ares completion bash)

  # bash, every shell (Debian/Ubuntu)
  ares completion bash | sudo tee /etc/bash_completion.d/ares >/dev/null

  # zsh, every shell: a directory on your $fpath
  ares completion zsh > "${fpath[1]}/_ares"

  # fish
  ares completion fish > ~/.config/fish/completions/ares.fish`,
		ValidArgs:             completionShells,
		Args:                  cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return writeCompletion(cmd.Root(), args[0], cmd.OutOrStdout())
		},
	}
}

func writeCompletion(root *cobra.Command, shell string, w io.Writer) error {
	switch shell {
	case "bash":
		return root.GenBashCompletionV2(w, true)
	case "zsh":
		return root.GenZshCompletion(w)
	case "fish":
		return root.GenFishCompletion(w, true)
	}
	return fmt.Errorf("completion: unknown shell %q (want bash, zsh or fish)", shell)
}
