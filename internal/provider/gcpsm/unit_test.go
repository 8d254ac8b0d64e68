package gcpsm

import (
	"errors"
	"hash/crc32"
	"testing"
	"time"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"github.com/googleapis/gax-go/v2/apierror"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

func TestValidateSpec(t *testing.T) {
	ptr := func(s string) *string { return &s }
	secretRef := func(name, key string, ns *string) esv1.GCPSMAuth {
		return esv1.GCPSMAuth{SecretRef: &esv1.GCPSMAuthSecretRef{
			SecretAccessKey: esv1.SecretKeySelector{Name: name, Key: key, Namespace: ns},
		}}
	}
	wi := func(name string, ns *string) esv1.GCPSMAuth {
		return esv1.GCPSMAuth{WorkloadIdentity: &esv1.GCPWorkloadIdentity{
			ServiceAccountRef: esv1.ServiceAccountSelector{Name: name, Namespace: ns},
		}}
	}
	for _, tc := range []struct {
		name    string
		kind    string
		spec    *esv1.GCPSMProvider
		wantErr error // nil: valid
	}{
		{name: "no gcpsm", spec: nil, wantErr: provider.ErrInvalidConfig},
		{name: "default credentials without project", spec: &esv1.GCPSMProvider{}},
		{name: "project only", spec: &esv1.GCPSMProvider{ProjectID: "alphabet-123"}},
		{name: "legacy domain-scoped project", spec: &esv1.GCPSMProvider{ProjectID: "example.com:my-project"}},
		{name: "project with a slash", spec: &esv1.GCPSMProvider{ProjectID: "p/secrets/x"}, wantErr: provider.ErrInvalidConfig},
		{name: "location", spec: &esv1.GCPSMProvider{ProjectID: "p", Location: "europe-west1"}},
		{name: "location that changes the host", spec: &esv1.GCPSMProvider{ProjectID: "p", Location: "evil.example.com/"}, wantErr: provider.ErrInvalidConfig},
		{name: "policy LatestOrFail", spec: &esv1.GCPSMProvider{ProjectID: "p", SecretVersionSelectionPolicy: "LatestOrFail"}},
		{name: "policy LatestOrFetch", spec: &esv1.GCPSMProvider{ProjectID: "p", SecretVersionSelectionPolicy: "LatestOrFetch"}},
		{name: "unknown policy", spec: &esv1.GCPSMProvider{ProjectID: "p", SecretVersionSelectionPolicy: "Newest"}, wantErr: provider.ErrInvalidConfig},
		{name: "secretRef", spec: &esv1.GCPSMProvider{ProjectID: "p", Auth: secretRef("creds", "key", nil)}},
		{name: "secretRef in the store's namespace", spec: &esv1.GCPSMProvider{ProjectID: "p", Auth: secretRef("creds", "key", ptr("default"))}},
		{name: "secretRef without key", spec: &esv1.GCPSMProvider{ProjectID: "p", Auth: secretRef("creds", "", nil)}, wantErr: provider.ErrInvalidConfig},
		{name: "secretRef without project", spec: &esv1.GCPSMProvider{Auth: secretRef("creds", "key", nil)}, wantErr: provider.ErrInvalidConfig},
		{name: "secretRef into another namespace", spec: &esv1.GCPSMProvider{ProjectID: "p", Auth: secretRef("creds", "key", ptr("other"))}, wantErr: provider.ErrInvalidConfig},
		{name: "cluster store secretRef into a namespace", kind: esv1.ClusterSecretStoreKind, spec: &esv1.GCPSMProvider{ProjectID: "p", Auth: secretRef("creds", "key", ptr("other"))}},
		{name: "workloadIdentity", spec: &esv1.GCPSMProvider{ProjectID: "p", Auth: wi("team-a", nil)}},
		{name: "workloadIdentity without project", spec: &esv1.GCPSMProvider{Auth: wi("team-a", nil)}},
		{name: "workloadIdentity without name", spec: &esv1.GCPSMProvider{ProjectID: "p", Auth: wi("", nil)}, wantErr: provider.ErrInvalidConfig},
		{name: "workloadIdentity into another namespace", spec: &esv1.GCPSMProvider{ProjectID: "p", Auth: wi("team-a", ptr("other"))}, wantErr: provider.ErrInvalidConfig},
		{name: "cluster store workloadIdentity into a namespace", kind: esv1.ClusterSecretStoreKind, spec: &esv1.GCPSMProvider{ProjectID: "p", Auth: wi("team-a", ptr("other"))}},
		{name: "workloadIdentity bad cluster location", spec: &esv1.GCPSMProvider{ProjectID: "p", Auth: esv1.GCPSMAuth{WorkloadIdentity: &esv1.GCPWorkloadIdentity{
			ServiceAccountRef: esv1.ServiceAccountSelector{Name: "a"}, ClusterLocation: "europe west1"}}}, wantErr: provider.ErrInvalidConfig},
		{name: "workloadIdentityFederation", spec: &esv1.GCPSMProvider{ProjectID: "p", Auth: esv1.GCPSMAuth{
			WorkloadIdentityFederation: &esv1.GCPWorkloadIdentityFederation{Audience: "//iam.googleapis.com/x"}}}, wantErr: provider.ErrNotSupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := gcpStore(tc.spec)
			if tc.spec == nil {
				store.Spec.Provider.GCPSM = nil
			}
			if tc.kind != "" {
				store.Kind, store.Namespace = tc.kind, ""
			}
			err := New().ValidateSpec(store)
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("ValidateSpec: %v, want valid", err)
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("ValidateSpec: got %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestMapError(t *testing.T) {
	throttled, err := status.New(codes.ResourceExhausted, "quota").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(7 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	fromSDK := func(err error) error {
		// The client returns *apierror.APIError, as gax converts it.
		ae, ok := apierror.FromError(err)
		if !ok {
			t.Fatalf("not an API error: %v", err)
		}
		return ae
	}
	for _, tc := range []struct {
		name      string
		err       error
		want      error
		wantRetry time.Duration
	}{
		{"not found", status.Error(codes.NotFound, "Secret [projects/p/secrets/x] not found"), provider.ErrNotFound, 0},
		{"permission denied", fromSDK(status.Error(codes.PermissionDenied, "denied")), provider.ErrForbidden, 0},
		{"unauthenticated", status.Error(codes.Unauthenticated, "bad token"), provider.ErrUnauthenticated, 0},
		{"unavailable", status.Error(codes.Unavailable, "connection refused"), provider.ErrUnreachable, 0},
		{"throttled", status.Error(codes.ResourceExhausted, "quota"), &provider.ThrottledError{}, 0},
		{"throttled with retry info", fromSDK(throttled.Err()), &provider.ThrottledError{}, 7 * time.Second},
		{"other", status.Error(codes.InvalidArgument, "bad"), nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := mapError(tc.err)
			if !errors.Is(got, tc.err) {
				t.Errorf("mapError lost the original error: %v", got)
			}
			var te *provider.ThrottledError
			switch want := tc.want.(type) {
			case nil:
				for _, s := range []error{provider.ErrNotFound, provider.ErrForbidden, provider.ErrUnauthenticated, provider.ErrUnreachable} {
					if errors.Is(got, s) {
						t.Errorf("mapError(%v) wraps %v, want no sentinel", tc.err, s)
					}
				}
			case *provider.ThrottledError:
				if !errors.As(got, &te) {
					t.Fatalf("mapError(%v) = %v, want a ThrottledError", tc.err, got)
				}
				if te.RetryAfter != tc.wantRetry {
					t.Errorf("RetryAfter = %s, want %s", te.RetryAfter, tc.wantRetry)
				}
			default:
				if !errors.Is(got, want) {
					t.Errorf("mapError(%v) = %v, want %v", tc.err, got, want)
				}
			}
		})
	}
}

func TestIsDisabledOrDestroyed(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"disabled", status.Error(codes.FailedPrecondition, "Secret Version [projects/1/secrets/x/versions/3] is in DISABLED state."), true},
		{"destroyed", status.Error(codes.FailedPrecondition, "Secret Version [projects/1/secrets/x/versions/3] is in DESTROYED state."), true},
		{"emulator wording", status.Error(codes.FailedPrecondition, "Version [x] is not enabled (state: DISABLED)"), true},
		{"other precondition", status.Error(codes.FailedPrecondition, "billing disabled for project"), false},
		{"not found", status.Error(codes.NotFound, "DISABLED"), false},
		{"not a status", errors.New("DISABLED state"), false},
	} {
		if got := isDisabledOrDestroyed(tc.err); got != tc.want {
			t.Errorf("%s: isDisabledOrDestroyed = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestNewestEnabled(t *testing.T) {
	at := func(sec int64) *timestamppb.Timestamp { return timestamppb.New(time.Unix(sec, 0)) }
	v := func(id string, state secretmanagerpb.SecretVersion_State, created int64) *secretmanagerpb.SecretVersion {
		return &secretmanagerpb.SecretVersion{Name: "projects/p/secrets/s/versions/" + id, State: state, CreateTime: at(created)}
	}
	const (
		enabled   = secretmanagerpb.SecretVersion_ENABLED
		disabled  = secretmanagerpb.SecretVersion_DISABLED
		destroyed = secretmanagerpb.SecretVersion_DESTROYED
	)
	for _, tc := range []struct {
		name     string
		versions []*secretmanagerpb.SecretVersion
		want     string
	}{
		{"none", nil, ""},
		{"none enabled", []*secretmanagerpb.SecretVersion{v("1", disabled, 1), v("2", destroyed, 2)}, ""},
		{"newest is disabled", []*secretmanagerpb.SecretVersion{v("1", enabled, 1), v("2", enabled, 2), v("3", disabled, 3)}, "projects/p/secrets/s/versions/2"},
		{"order of the list does not matter", []*secretmanagerpb.SecretVersion{v("2", enabled, 2), v("3", destroyed, 3), v("1", enabled, 1)}, "projects/p/secrets/s/versions/2"},
		{"same creation time: higher number", []*secretmanagerpb.SecretVersion{v("9", enabled, 5), v("10", enabled, 5)}, "projects/p/secrets/s/versions/10"},
	} {
		if got := newestEnabled(tc.versions); got != tc.want {
			t.Errorf("%s: newestEnabled = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestCheckPayload(t *testing.T) {
	data := []byte("value")
	sum := int64(crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)))
	for _, tc := range []struct {
		name    string
		payload *secretmanagerpb.SecretPayload
		wantErr bool
	}{
		{"no payload", nil, true},
		{"no checksum", &secretmanagerpb.SecretPayload{Data: data}, false},
		{"right checksum", &secretmanagerpb.SecretPayload{Data: data, DataCrc32C: proto.Int64(sum)}, false},
		{"wrong checksum", &secretmanagerpb.SecretPayload{Data: data, DataCrc32C: proto.Int64(sum + 1)}, true},
	} {
		err := checkPayload(tc.payload)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: checkPayload = %v, want error %v", tc.name, err, tc.wantErr)
		}
		if err != nil && !errors.Is(err, provider.ErrBadResponse) {
			t.Errorf("%s: checkPayload = %v, want ErrBadResponse", tc.name, err)
		}
	}
}

func TestListFilter(t *testing.T) {
	for _, tc := range []struct {
		name string
		find provider.List
		want string
	}{
		{"nothing", provider.List{}, ""},
		{"labels in key order", provider.List{Tags: map[string]string{"team": "payments", "env": "prod"}}, "labels.env=prod AND labels.team=payments"},
		{"label values GCP cannot hold are left out", provider.List{Tags: map[string]string{"env": "prod OR name:x"}}, ""},
		{"path", provider.List{Path: "app-"}, "name:app-"},
		{"path with spaces is left out", provider.List{Path: "a b"}, ""},
		{"labels and path", provider.List{Path: "app", Tags: map[string]string{"env": "prod"}}, "labels.env=prod AND name:app"},
	} {
		if got := listFilter(tc.find); got != tc.want {
			t.Errorf("%s: listFilter = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestMatches(t *testing.T) {
	labels := map[string]string{"env": "prod", "team": "payments"}
	for _, tc := range []struct {
		name string
		find provider.List
		id   string
		want bool
	}{
		{"everything", provider.List{}, "any", true},
		{"path is a prefix", provider.List{Path: "app"}, "app-db", true},
		{"path is not a prefix", provider.List{Path: "db"}, "app-db", false},
		{"labels match", provider.List{Tags: map[string]string{"env": "prod"}}, "x", true},
		{"label value differs", provider.List{Tags: map[string]string{"env": "dev"}}, "x", false},
		{"label missing", provider.List{Tags: map[string]string{"owner": ""}}, "x", false},
	} {
		if got := matches(tc.find, tc.id, labels); got != tc.want {
			t.Errorf("%s: matches = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestNewWorkloadIdentityConfig(t *testing.T) {
	cluster := gkeCluster{Project: "cp", Location: "europe-west1", Name: "prod"}
	const stsAudience = "identitynamespace:cp.svc.id.goog:https://container.googleapis.com/v1/projects/cp/locations/europe-west1/clusters/prod"
	for _, tc := range []struct {
		name      string
		gsa       string
		extra     []string
		want      workloadIdentityConfig
		wantError bool
	}{
		{name: "federated token used directly", want: workloadIdentityConfig{
			TokenAudiences: []string{"cp.svc.id.goog"},
			STSAudience:    stsAudience,
		}},
		{name: "impersonates the annotated service account", gsa: "sa@p.iam.gserviceaccount.com", extra: []string{"aud-1"}, want: workloadIdentityConfig{
			TokenAudiences:   []string{"cp.svc.id.goog", "aud-1"},
			STSAudience:      stsAudience,
			ImpersonationURL: "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/sa@p.iam.gserviceaccount.com:generateAccessToken",
		}},
		{name: "annotation that changes the URL", gsa: "x@y/../../z", wantError: true},
		{name: "annotation that is no email", gsa: "just-a-name", wantError: true},
	} {
		got, err := newWorkloadIdentityConfig(cluster, tc.gsa, tc.extra)
		if (err != nil) != tc.wantError {
			t.Errorf("%s: error = %v, want error %v", tc.name, err, tc.wantError)
			continue
		}
		if tc.wantError {
			continue
		}
		if got.STSAudience != tc.want.STSAudience || got.ImpersonationURL != tc.want.ImpersonationURL ||
			len(got.TokenAudiences) != len(tc.want.TokenAudiences) {
			t.Errorf("%s: config = %+v, want %+v", tc.name, got, tc.want)
			continue
		}
		for i := range got.TokenAudiences {
			if got.TokenAudiences[i] != tc.want.TokenAudiences[i] {
				t.Errorf("%s: token audiences = %v, want %v", tc.name, got.TokenAudiences, tc.want.TokenAudiences)
			}
		}
	}
}

func TestResourceNamesAndEndpoints(t *testing.T) {
	for _, tc := range []struct {
		project, location, wantParent, wantEndpoint string
	}{
		{"p1", "", "projects/p1", ""},
		{"p1", "europe-west1", "projects/p1/locations/europe-west1", "secretmanager.europe-west1.rep.googleapis.com:443"},
	} {
		if got := parentName(tc.project, tc.location); got != tc.wantParent {
			t.Errorf("parentName(%q, %q) = %q, want %q", tc.project, tc.location, got, tc.wantParent)
		}
		if tc.location != "" {
			if got := regionalEndpoint(tc.location); got != tc.wantEndpoint {
				t.Errorf("regionalEndpoint(%q) = %q, want %q", tc.location, got, tc.wantEndpoint)
			}
		}
	}
	for name, want := range map[string]string{
		"projects/123/secrets/db":                      "db",
		"projects/p/locations/europe-west1/secrets/db": "db",
	} {
		if got := secretID(name); got != want {
			t.Errorf("secretID(%q) = %q, want %q", name, got, want)
		}
	}
	if got := versionID("projects/p/secrets/db/versions/12"); got != "12" {
		t.Errorf("versionID = %q, want 12", got)
	}
}
