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
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	preferListingInformers()
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
// preferListingInformers makes informers start with a paged LIST, as before
// client-go 1.35, rather than the watch-list stream that client-go now
// turns on by default, unless KUBE_FEATURE_WatchListClient says otherwise.
// With the stream, the informer of an empty collection (no SecretSyncs, no
// ClusterSecretStores: the common case) waited a second for the API
// server's bookmark, twice in a row as controllers start, and the first
// Secret was written 2.3 s after start instead of 0.4 s
// (docs/performance.md). client-go reads the variable once, at the first
// feature check, which is after this.
func preferListingInformers() {
	const gate = "KUBE_FEATURE_WatchListClient"
	if _, set := os.LookupEnv(gate); !set {
		_ = os.Setenv(gate, "false")
	}
}

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
		l := zap.New(zap.Level(uzap.NewAtomicLevelAt(lvl)), func(o *zap.Options) { o.TimeEncoder = zapcore.RFC3339NanoTimeEncoder })
		ctrl.SetLogger(l)
		return l
	}
}
