package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/devcluster"
	"github.com/keyferry/keyferry/internal/manifest"
	"github.com/keyferry/keyferry/internal/operator"
)

func runDev(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("dev", flag.ExitOnError)
	kubeconfigOut := fs.String("kubeconfig-out", ".keyferry/kubeconfig", "where to write the admin kubeconfig of the local cluster")
	noExamples := fs.Bool("no-examples", false, "do not apply examples/quickstart")
	exitAfterSync := fs.Bool("exit-after-sync", false, "exit 0 once the quickstart is synced (non-zero with the reason otherwise)")
	examples := fs.String("examples", "examples/quickstart", "manifests to apply")
	timeout := fs.Duration("sync-timeout", 2*time.Minute, "how long to wait for the quickstart to sync")
	newLog := logFlags(fs)
	_ = fs.Parse(args)
	log := newLog()

	root, err := devcluster.RepoRoot()
	if err != nil {
		return err
	}
	fmt.Println("starting local control plane (etcd, kube-apiserver, kube-controller-manager)...")
	cluster, err := devcluster.Start(ctx, devcluster.Options{
		CRDDirs:           []string{filepath.Join(root, "config", "crd")},
		ControllerManager: true,
	})
	if err != nil {
		return err
	}
	defer func() { _ = cluster.Stop() }()
	if err := cluster.WriteKubeConfig(*kubeconfigOut); err != nil {
		return fmt.Errorf("writing kubeconfig: %w", err)
	}
	fmt.Printf("control plane up at %s; kubeconfig written to %s\n", cluster.Config.Host, *kubeconfigOut)

	opCtx, stop := context.WithCancel(ctx)
	defer stop()
	op, err := operator.New(opCtx, cluster.Config, operator.Options{Log: log})
	if err != nil {
		return err
	}
	mgrErr := make(chan error, 1)
	go func() { mgrErr <- op.Start(opCtx) }()
	fmt.Println("operator running")

	if !*noExamples {
		c, err := client.New(cluster.Config, client.Options{Scheme: operator.NewScheme()})
		if err != nil {
			return err
		}
		objs, err := manifest.ApplyPath(ctx, c, "default", filepath.Join(root, *examples))
		if err != nil {
			return fmt.Errorf("applying %s: %w", *examples, err)
		}
		fmt.Printf("applied %d objects from %s\n", len(objs), *examples)
		for _, o := range objs {
			if o.GetKind() != "ExternalSecret" {
				continue
			}
			ns := o.GetNamespace()
			if ns == "" {
				ns = "default"
			}
			if err := waitSynced(ctx, c, client.ObjectKey{Namespace: ns, Name: o.GetName()}, *timeout); err != nil {
				if *exitAfterSync {
					return err
				}
				fmt.Fprintln(os.Stderr, err)
			}
		}
	}
	if *exitAfterSync {
		return nil
	}
	fmt.Printf("\nkeyferry dev is running. Try:\n  KUBECONFIG=%s kubectl get externalsecrets,secretstores -A\nPress Ctrl-C to stop.\n", *kubeconfigOut)
	select {
	case <-ctx.Done():
		return nil
	case err := <-mgrErr:
		return err
	}
}

// waitSynced waits for an ExternalSecret to be Ready and prints its Secret's
// keys (never values).
func waitSynced(ctx context.Context, c client.Client, key client.ObjectKey, timeout time.Duration) error {
	var es esv1.ExternalSecret
	var last string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, key, &es); err != nil {
			return false, nil
		}
		for _, cond := range es.Status.Conditions {
			if cond.Type == esv1.ExternalSecretReady {
				last = cond.Reason + ": " + cond.Message
				return cond.Status == metav1.ConditionTrue, nil
			}
		}
		return false, nil
	})
	if err != nil {
		if last == "" {
			last = "no status yet"
		}
		return fmt.Errorf("ExternalSecret %s did not sync: %s", key, last)
	}
	name := es.Status.Binding.Name
	var s corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: key.Namespace, Name: name}, &s); err != nil {
		return errors.Join(fmt.Errorf("reading synced Secret %s/%s", key.Namespace, name), err)
	}
	keys := make([]string, 0, len(s.Data))
	for k := range s.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Printf("ExternalSecret %s synced: Secret %s/%s (type %s) has keys [%s]\n", key, key.Namespace, name, s.Type, strings.Join(keys, ", "))
	return nil
}
