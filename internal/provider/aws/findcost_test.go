package aws_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine/fetch"
	"github.com/keyferry/keyferry/internal/provider"
)

// A find through the fetch layer costs what AWS's API needs: the listing's
// pages and ⌈N/batch⌉ batch reads (or the pages alone when the listing
// returns the values), each admitted by the store's rate limiter; a second
// find and a read of a found key in the same window cost nothing.
func TestFindThroughTheFetchLayerCostsWhatAWSNeeds(t *testing.T) {
	const anyPages = -1
	const n = 25
	for i := range n {
		createSecret(t, fmt.Sprintf("fcost/k-%02d", i), fmt.Sprint("v", i), map[string]string{"fcost": "yes"})
		putParameter(t, fmt.Sprintf("/fcost/k-%02d", i), fmt.Sprint("v", i), ssmtypes.ParameterTypeSecureString, map[string]string{"fcost": "yes"})
	}
	for _, tc := range []struct {
		name string
		spec esv1.AWSProvider
		find provider.Find
		want map[string]int // AWS actions and their calls
	}{
		{"Secrets Manager", smSpec(), provider.Find{Path: "fcost/"},
			map[string]int{"ListSecrets": 1, "BatchGetSecretValue": 2}},
		{"Parameter Store by path", psSpec(), provider.Find{Path: "/fcost"},
			map[string]int{"GetParametersByPath": 3}},
		{"Parameter Store by tags", psSpec(), provider.Find{Tags: map[string]string{"fcost": "yes"}},
			// moto pages DescribeParameters before filtering by tag: its
			// page count depends on every parameter of the account
			map[string]int{"DescribeParameters": anyPages, "GetParameters": 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder()
			reg := provider.NewRegistry()
			reg.Register("aws", motoProvider(rec))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			l := fetch.New(ctx, fetch.Options{Registry: reg, Kube: env.kube, Tokens: env.tokens, Log: testr.New(t)})
			spec := tc.spec
			spec.Region, spec.Auth = region, secretRefAuth()
			req := fetch.Request{Store: store(spec), Namespace: ns, Subscriber: "es", MaxAge: time.Minute}

			found, err := l.Find(ctx, req, tc.find)
			if err != nil {
				t.Fatal(err)
			}
			name := func(i int) string {
				if spec.Service == esv1.AWSServiceParameterStore {
					return fmt.Sprintf("/fcost/k-%02d", i)
				}
				return fmt.Sprintf("fcost/k-%02d", i)
			}
			if len(found) != n || string(found[name(7)]) != "v7" {
				t.Fatalf("found %d values (%s=%q), want %d", len(found), name(7), found[name(7)], n)
			}
			total := 0
			for action, want := range tc.want {
				got := len(rec.calls(action))
				if got != want && (want != anyPages || got == 0) {
					t.Errorf("%s calls: %d, want %d", action, got, want)
				}
				total += got
			}
			if got := rec.count(); got != total {
				t.Errorf("the find made %d calls to AWS, want %d (%v)", got, total, tc.want)
			}
			if got := l.Calls(req.Store.Kind, req.Store.Namespace, req.Store.Name); got != int64(total) {
				t.Errorf("%d calls admitted by the rate limiter, want every one of the %d", got, total)
			}
			t.Logf("a find of %d values: %d calls to AWS, all admitted", n, total)

			before := rec.count()
			if _, err := l.Find(ctx, req, tc.find); err != nil {
				t.Fatal(err)
			}
			if _, errs := l.Get(ctx, req, []provider.Ref{{Key: name(3)}}); len(errs) != 0 {
				t.Fatal(errs)
			}
			if got := rec.count() - before; got != 0 {
				t.Errorf("a second find and a get of a found key in the window made %d calls, want 0", got)
			}
		})
	}
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}
