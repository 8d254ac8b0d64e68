// Package devcluster runs a local Kubernetes control plane (etcd,
// kube-apiserver and optionally kube-controller-manager) from the binaries
// hack/control-plane.sh builds. Tests and `keyferry dev` use it; it is a thin
// layer over controller-runtime's envtest that adds the controller manager
// (garbage collection of owned objects, namespace deletion) and kubeconfig
// output.
package devcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// DefaultVersion is the Kubernetes version hack/control-plane.sh builds.
const DefaultVersion = "v1.37.1"

// EnvBinaryDir overrides where the control-plane binaries are found.
const EnvBinaryDir = "KEYFERRY_CONTROL_PLANE"

// Options configure a cluster.
type Options struct {
	// BinaryDir holds kube-apiserver, etcd and kube-controller-manager;
	// empty means BinaryDir().
	BinaryDir string
	// CRDDirs are installed before Start returns.
	CRDDirs []string
	// ControllerManager also runs kube-controller-manager (garbage collector
	// and namespace controllers).
	ControllerManager bool
	// ExtraControllers are kube-controller-manager controllers to run
	// besides those (e.g. "deployment" to turn Deployments into
	// ReplicaSets); only with ControllerManager.
	ExtraControllers []string
	// Output receives the control plane's own logs; nil discards them.
	Output io.Writer
}

// Cluster is a running control plane.
type Cluster struct {
	// Config is an admin client configuration.
	Config *rest.Config
	env    *envtest.Environment
	kcm    *exec.Cmd
	kcmDir string
	kcmErr chan error
}

// BinaryDir finds the control-plane binaries: $KEYFERRY_CONTROL_PLANE, or
// bin/k8s/<DefaultVersion> in the nearest parent directory holding go.mod.
func BinaryDir() (string, error) {
	if d := os.Getenv(EnvBinaryDir); d != "" {
		return d, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "bin", "k8s", DefaultVersion), nil
}

// RepoRoot returns the nearest parent of the working directory (or of this
// source file) that holds go.mod.
func RepoRoot() (string, error) {
	starts := []string{}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		starts = append(starts, filepath.Dir(file))
	}
	for _, dir := range starts {
		for d := dir; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				return d, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return "", errors.New("no go.mod found above the working directory")
}

// Start starts etcd and kube-apiserver, installs the CRDs and, if asked,
// starts kube-controller-manager.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	dir := opts.BinaryDir
	if dir == "" {
		var err error
		if dir, err = BinaryDir(); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "kube-apiserver")); err != nil {
		return nil, fmt.Errorf("control plane binaries not found in %s (run `make control-plane`): %w", dir, err)
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    dir,
		CRDDirectoryPaths:        opts.CRDDirs,
		ErrorIfCRDPathMissing:    len(opts.CRDDirs) > 0,
		ControlPlaneStartTimeout: 60 * time.Second,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	if opts.Output != nil {
		api := env.ControlPlane.GetAPIServer()
		api.Out, api.Err = opts.Output, opts.Output
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting control plane: %w", err)
	}
	c := &Cluster{Config: cfg, env: env}
	if opts.ControllerManager {
		if err := c.startControllerManager(ctx, dir, opts.ExtraControllers, opts.Output); err != nil {
			_ = c.Stop()
			return nil, err
		}
	}
	return c, nil
}

// KubeConfig returns a kubeconfig for an admin user.
func (c *Cluster) KubeConfig() ([]byte, error) {
	u, err := c.env.AddUser(envtest.User{Name: "keyferry-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, fmt.Errorf("adding admin user: %w", err)
	}
	return u.KubeConfig()
}

// AddUser returns a client configuration for a user in the given groups,
// authenticated by a client certificate; RBAC applies to it.
func (c *Cluster) AddUser(name string, groups ...string) (*rest.Config, error) {
	u, err := c.env.AddUser(envtest.User{Name: name, Groups: groups}, nil)
	if err != nil {
		return nil, fmt.Errorf("adding user %s: %w", name, err)
	}
	return u.Config(), nil
}

// WriteKubeConfig writes an admin kubeconfig to path (mode 0600).
func (c *Cluster) WriteKubeConfig(path string) error {
	b, err := c.KubeConfig()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

func (c *Cluster) startControllerManager(ctx context.Context, dir string, extra []string, out io.Writer) error {
	kcmDir, err := os.MkdirTemp("", "keyferry-kcm-")
	if err != nil {
		return err
	}
	c.kcmDir = kcmDir
	kc := filepath.Join(kcmDir, "kubeconfig")
	if err := c.WriteKubeConfig(kc); err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(dir, "kube-controller-manager"),
		"--kubeconfig="+kc,
		"--authentication-kubeconfig="+kc,
		"--authorization-kubeconfig="+kc,
		"--controllers="+strings.Join(append([]string{"garbagecollector", "namespace", "serviceaccount"}, extra...), ","),
		"--leader-elect=false",
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(port),
		"--cert-dir="+kcmDir,
		"--concurrent-gc-syncs=5",
	)
	if out != nil {
		cmd.Stdout, cmd.Stderr = out, out
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting kube-controller-manager: %w", err)
	}
	c.kcm = cmd
	c.kcmErr = make(chan error, 1)
	go func() { c.kcmErr <- cmd.Wait() }()
	return nil
}

// Stop stops everything Start started.
func (c *Cluster) Stop() error {
	if c.kcm != nil && c.kcm.Process != nil {
		_ = c.kcm.Process.Signal(os.Interrupt)
		select {
		case <-c.kcmErr:
		case <-time.After(10 * time.Second):
			_ = c.kcm.Process.Kill()
			<-c.kcmErr
		}
	}
	if c.kcmDir != "" {
		_ = os.RemoveAll(c.kcmDir)
	}
	return c.env.Stop()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
