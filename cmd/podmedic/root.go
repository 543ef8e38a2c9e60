package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/zapr"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"k8s.io/klog/v2"

	podmedic "github.com/podmedic/podmedic"
	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/rules"
)

// exitError carries an exit code without printing anything more (check prints its own report).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// run executes the CLI and returns the process exit code: 0 success, 1 failure. Errors are
// printed as one line on stderr, never as a stack trace.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	default:
		fmt.Fprintf(stderr, "podmedic: %v\n", err)
		return 1
	}
}

type globalFlags struct {
	logLevel  string
	logFormat string
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:           "podmedic",
		Short:         "Remediation bot for Kubernetes clusters running Airflow and Spark",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", "json", "log format: json or console")
	root.AddCommand(newRunCmd(g), newCheckCmd(), newReplayCmd(), newDemoCmd(g), newVersionCmd(), newDigestCmd(), newOverridesCmd())
	return root
}

// logger builds the zap logger (JSON on stderr by default) and routes klog into it.
func (g *globalFlags) logger(stderr io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(g.logLevel)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %v", err)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	switch g.logFormat {
	case "json":
		enc = zapcore.NewJSONEncoder(encCfg)
	case "console":
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	default:
		return nil, fmt.Errorf("--log-format: unknown format %q (want json or console)", g.logFormat)
	}
	z := zap.New(zapcore.NewCore(enc, zapcore.AddSync(stderr), lvl))
	klog.SetLogger(zapr.NewLogger(z.Named("k8s")))
	return z, nil
}

// loadConfig loads --config, or the embedded default rules when path is empty.
func loadConfig(path string) (*config.Config, error) {
	reg := rules.NewDefaultRegistry()
	if path == "" {
		return config.Parse(podmedic.DefaultRulesFile, podmedic.DefaultRules(), reg)
	}
	return config.Load(path, reg)
}

// configError makes a config error printable on one line per problem.
func configError(err error) error {
	var errs config.Errors
	if errors.As(err, &errs) {
		return fmt.Errorf("invalid rules:\n%v", errs)
	}
	return err
}
