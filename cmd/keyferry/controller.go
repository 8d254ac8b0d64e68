package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/keyferry/keyferry/internal/operator"
)

func runController(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("controller", flag.ExitOnError)
	opts := operator.Options{}
	fs.StringVar(&opts.MetricsAddr, "metrics-bind-address", ":8080", `metrics listen address ("0" disables)`)
	fs.StringVar(&opts.HealthAddr, "health-probe-bind-address", ":8081", `health probe listen address ("0" disables)`)
	fs.BoolVar(&opts.LeaderElection, "leader-elect", false, "elect a leader so that only one replica reconciles")
	fs.StringVar(&opts.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader election lease")
	fs.IntVar(&opts.Concurrency, "concurrent", 16, "parallel reconciles per controller")
	fs.Float64Var(&opts.StoreQPS, "store-qps", 100, "calls per second to one store")
	fs.IntVar(&opts.StoreBurst, "store-burst", 200, "burst of calls to one store")
	fs.DurationVar(&opts.SecretSyncRotationPollInterval, "secretsync-rotation-poll-interval", time.Hour, "how often SecretSyncs re-check their vault")
	qps := fs.Float64("client-qps", 1000, "Kubernetes API client queries per second")
	burst := fs.Int("client-burst", 2000, "Kubernetes API client burst")
	newLog := logFlags(fs)
	_ = fs.Parse(args)
	opts.Log = newLog()

	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("loading Kubernetes configuration: %w", err)
	}
	cfg.QPS, cfg.Burst = float32(*qps), *burst
	op, err := operator.New(ctx, cfg, opts)
	if err != nil {
		return err
	}
	return op.Manager.Start(ctx)
}
