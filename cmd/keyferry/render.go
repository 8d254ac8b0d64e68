package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/keyferry/keyferry/internal/preview"
)

// listFlag is a flag that may be given many times.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// runRender implements `keyferry render`: it prints the Secret each
// ExternalSecret (or ClusterExternalSecret) of a manifest file would
// produce from values given as files, offline, and for a PushSecret the
// Secret whose keys it would push (internal/preview does the work).
func runRender(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("render", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var output string
	o := preview.Options{}
	manifests := (*listFlag)(&o.Manifests)
	fs.Var(manifests, "f", "manifest file with ExternalSecrets, ClusterExternalSecrets or PushSecrets (repeatable; - reads stdin)")
	fs.Var(manifests, "source-templated-object", "same as -f (esoctl's name)")
	fs.Var((*listFlag)(&o.Values), "values", "YAML or JSON file mapping each key the template sees to its value as text (repeatable)")
	secretData := (*listFlag)(&o.SecretData)
	fs.Var(secretData, "secret-data", "YAML or JSON file mapping each key to its value in base64, as a Secret's data (repeatable)")
	fs.Var(secretData, "source-secret-data-file", "same as --secret-data (esoctl's name)")
	fs.Var((*listFlag)(&o.FromDirs), "from-dir", "directory with one file per key: the file name is the key, its content the value (repeatable)")
	cms := (*listFlag)(&o.ConfigMaps)
	fs.Var(cms, "template-from-config-map", "file with ConfigMaps that templateFrom.configMap names (repeatable)")
	secrets := (*listFlag)(&o.Secrets)
	fs.Var(secrets, "template-from-secret", "file with Secrets that templateFrom.secret names (repeatable)")
	fs.StringVar(&o.Namespace, "namespace", "default", "namespace of manifests that name none")
	fs.StringVar(&o.Name, "name", "", "render only the ExternalSecret, ClusterExternalSecret or PushSecret of this name")
	fs.StringVar(&output, "output", "", "write the Secrets to this file instead of stdout")
	fs.BoolVar(&o.Decoded, "decoded", false, "print values that are UTF-8 text under stringData instead of base64 under data")
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: keyferry render -f externalsecret.yaml [--values values.yaml] [--from-dir dir] [flags]

Prints the Secret each ExternalSecret in the manifest would produce, offline:
the values its data and dataFrom would fetch are given as files, keyed by
the names the template sees (spec.data[].secretKey, and the keys dataFrom
would produce). For a PushSecret, the values are the selected Secret's data
and the output is the Secret whose keys it pushes, after spec.template.

flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("render: unexpected argument %q (give manifests with -f)", fs.Arg(0))
	}
	if len(o.Manifests) == 0 {
		fs.Usage()
		return errors.New("render: no manifest: give one with -f")
	}
	out, err := preview.Render(ctx, o)
	if err != nil {
		return fmt.Errorf("render: %w", err)
	}
	if output != "" {
		if err := os.WriteFile(output, out, 0o600); err != nil {
			return fmt.Errorf("render: writing %s: %w", output, err)
		}
		return nil
	}
	_, err = stdout.Write(out)
	return err
}
