// Command keyferry is the keyferry operator. Subcommands:
//
//	keyferry controller   run the operator against KUBECONFIG or in-cluster config
//	keyferry dev          run a local control plane, the operator and the quickstart
//	keyferry render       print the Secret an ExternalSecret produces from values in files, offline
//	keyferry version      print the version
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-logr/logr"
	uzap "go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/keyferry/keyferry/internal/logging"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	var err error
	switch os.Args[1] {
	case "controller":
		err = runController(ctx, os.Args[2:])
	case "dev":
		err = runDev(ctx, os.Args[2:])
	case "render":
		err = runRender(ctx, os.Args[2:], os.Stdout, os.Stderr)
	case "version":
		fmt.Println("keyferry", version)
	case "-h", "--help", "help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "keyferry:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: keyferry <command> [flags]

commands:
  controller   run the operator against KUBECONFIG or the in-cluster config
  dev          start a local control plane, the operator and the quickstart example
  render       print the Secret an ExternalSecret produces from values in files, offline
  version      print the version
`)
}

// logFlags registers --log-level and returns a constructor for the logger.
func logFlags(fs *flag.FlagSet) func() logr.Logger {
	level := fs.String("log-level", "info", "log level: debug, info or error")
	return func() logr.Logger {
		lvl := zapcore.InfoLevel
		switch *level {
		case "debug":
			lvl = zapcore.DebugLevel
		case "error":
			lvl = zapcore.ErrorLevel
		}
		// Values are encoded only for lines logged: most reconciles log none.
		l := logging.Deferred(zap.New(zap.Level(uzap.NewAtomicLevelAt(lvl)), func(o *zap.Options) { o.TimeEncoder = zapcore.RFC3339NanoTimeEncoder }))
		ctrl.SetLogger(l)
		return l
	}
}
