package aws_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/keyferry/keyferry/internal/provider"
	awsprovider "github.com/keyferry/keyferry/internal/provider/aws"
)

// files lists the file names ClassObjects returns for params.
func files(t *testing.T, params map[string]string) ([]string, error) {
	t.Helper()
	objs, err := (&awsprovider.Provider{}).ClassObjects(params)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, o := range objs {
		out = append(out, o.File)
	}
	return out, nil
}

// The examples of the AWS provider's README and examples/ directory, and
// its rules, one row each.
func TestClassObjects(t *testing.T) {
	const failoverARN = `
- objectName: "arn:aws:secretsmanager:us-east-1:123456789012:secret:PrimarySecret-12345"
  failoverObject:
    objectName: "arn:aws:secretsmanager:us-east-2:123456789012:secret:FailoverSecret-12345"
  objectAlias: testArn
`
	tests := []struct {
		name    string
		params  map[string]string
		want    []string
		wantErr string
	}{
		{name: "ExampleSecretProviderClass-IRSA.yaml", params: map[string]string{"objects": `
    - objectName: "MySecret"
      objectType: "secretsmanager"
`}, want: []string{"MySecret"}},
		{name: "ExampleSecretProviderClass-PodIdentity.yaml", params: map[string]string{"objects": `
  - objectName: "MySecret"
    objectType: "secretsmanager"
`, "usePodIdentity": "true"}, want: []string{"MySecret"}},
		{name: "preferredAddressType is ipv4 or ipv6, any case", params: map[string]string{"usePodIdentity": "T", "preferredAddressType": "IPv6", "objects": `[{objectName: MySecret, objectType: secretsmanager}]`},
			want: []string{"MySecret"}},
		{name: "preferredAddressType is an address type", params: map[string]string{"usePodIdentity": "true", "preferredAddressType": "ipx", "objects": `[{objectName: MySecret, objectType: secretsmanager}]`},
			wantErr: "parameters.preferredAddressType"},
		{name: "usePodIdentity false is IRSA", params: map[string]string{"usePodIdentity": "F", "objects": `[{objectName: MySecret, objectType: secretsmanager}]`},
			want: []string{"MySecret"}},
		{name: "usePodIdentity must be a boolean", params: map[string]string{"usePodIdentity": "maybe", "objects": `[{objectName: a, objectType: secretsmanager}]`},
			wantErr: "parameters.usePodIdentity"},
		{name: "README jmesPath example", params: map[string]string{"objects": `
- objectName: "MySecret"
  objectType: "secretsmanager"
  jmesPath:
      - path: "username"
        objectAlias: "MySecretUsername"
      - path: "password"
        objectAlias: "MySecretPassword"
`}, want: []string{"MySecret", "MySecretPassword", "MySecretUsername"}},
		{name: "README hyphenated jmesPath", params: map[string]string{"objects": `
- objectName: "MySecret"
  objectType: "secretsmanager"
  jmesPath:
    - path: '"hyphenated-path"'
      objectAlias: '"hyphenated-alias"'
`}, want: []string{`"hyphenated-alias"`, "MySecret"}},
		{name: "README failover example", params: map[string]string{"region": "us-east-1", "failoverRegion": "us-east-2", "objects": failoverARN},
			want: []string{"testArn"}},
		{name: "failoverObject needs failoverRegion", params: map[string]string{"region": "us-east-1", "objects": failoverARN},
			wantErr: "failoverRegion is not set"},
		{name: "failoverObject needs objectAlias", params: map[string]string{"region": "us-east-1", "failoverRegion": "us-east-2", "objects": `
- objectName: "arn:aws:secretsmanager:us-east-1:123456789012:secret:PrimarySecret-12345"
  failoverObject: {objectName: "arn:aws:secretsmanager:us-east-2:123456789012:secret:FailoverSecret-12345"}
`}, wantErr: "objectAlias is required with failoverObject"},
		{name: "failover objectVersion must match", params: map[string]string{"region": "us-east-1", "failoverRegion": "us-east-2", "objects": `
- {objectName: MySecret, objectType: secretsmanager, objectAlias: a, objectVersion: v1, failoverObject: {objectName: Other, objectVersion: v2}}
`}, wantErr: "failoverObject.objectVersion must be"},
		{name: "failover ARN must be in the failover region", params: map[string]string{"region": "us-east-1", "failoverRegion": "us-west-2", "objects": failoverARN},
			wantErr: `not "us-west-2"`},
		{name: "failoverRegion differs from region", params: map[string]string{"region": "us-east-1", "failoverRegion": "us-east-1", "objects": `[{objectName: a, objectType: ssmparameter}]`},
			wantErr: "cannot be the same"},
		{name: "ARN region must be the region", params: map[string]string{"region": "eu-west-1", "objects": `
- objectName: "arn:aws:secretsmanager:us-east-1:123456789012:secret:MySecret-a1b2c3"
`}, wantErr: `is in region "us-east-1", not "eu-west-1"`},
		{name: "secretsmanager ARN needs no objectType; its name is the file", params: map[string]string{"objects": `
- objectName: "arn:aws:secretsmanager:us-east-1:123456789012:secret:MySecret-a1b2c3"
  objectAlias: db
`}, want: []string{"db"}},
		{name: "ssm ARN is an ssmparameter", params: map[string]string{"objects": `
- {objectName: "arn:aws:ssm:us-east-1:123456789012:parameter/app/db", objectType: ssmparameter, objectAlias: db}
`}, want: []string{"db"}},
		{name: "objectType must match the ARN", params: map[string]string{"objects": `
- {objectName: "arn:aws:ssm:us-east-1:123456789012:parameter/app/db", objectType: secretsmanager}
`}, wantErr: "does not match the ARN"},
		{name: "ARN of another service", params: map[string]string{"objects": `[{objectName: "arn:aws:s3:::bucket"}]`},
			wantErr: `service "s3"`},
		{name: "objectType is required without an ARN", params: map[string]string{"objects": `[{objectName: MySecret}]`},
			wantErr: "objectType is required"},
		{name: "objectType ssm is not accepted", params: map[string]string{"objects": `[{objectName: p, objectType: ssm}]`},
			wantErr: `objectType "ssm" is not secretsmanager or ssmparameter`},
		{name: "objectName is required", params: map[string]string{"objects": `[{objectType: ssmparameter, objectAlias: x}]`},
			wantErr: "objects[0]: objectName is required"},
		{name: "a parameter takes a version or a label", params: map[string]string{"objects": `[{objectName: p, objectType: ssmparameter, objectVersion: "1", objectVersionLabel: prod}]`},
			wantErr: "not both"},
		{name: "a secret takes a version and a label", params: map[string]string{"objects": `[{objectName: s, objectType: secretsmanager, objectVersion: "v1", objectVersionLabel: AWSCURRENT}]`},
			want: []string{"s"}},
		{name: "parameter paths become file names with '_'", params: map[string]string{"objects": `[{objectName: /app/db/password, objectType: ssmparameter}]`},
			want: []string{"_app_db_password"}},
		{name: "pathTranslation sets the character", params: map[string]string{"pathTranslation": "-", "objects": `[{objectName: /app/db, objectType: ssmparameter}]`},
			want: []string{"-app-db"}},
		{name: "pathTranslation False keeps the path without its leading '/'", params: map[string]string{"pathTranslation": "False", "objects": `[{objectName: /app/db, objectType: ssmparameter}]`},
			want: []string{"app/db"}},
		{name: "pathTranslation False refuses ..", params: map[string]string{"pathTranslation": "false", "objects": `[{objectName: x, objectAlias: ../etc/passwd, objectType: ssmparameter}]`},
			wantErr: "'..' path element"},
		{name: "pathTranslation is one character", params: map[string]string{"pathTranslation": "ab", "objects": `[{objectName: x, objectType: ssmparameter}]`},
			wantErr: "pathTranslation must be False or a single character"},
		{name: "jmesPath needs a path", params: map[string]string{"objects": `[{objectName: s, objectType: secretsmanager, jmesPath: [{objectAlias: a}]}]`},
			wantErr: "jmesPath[0].path is required"},
		{name: "jmesPath needs an objectAlias", params: map[string]string{"objects": `[{objectName: s, objectType: secretsmanager, jmesPath: [{path: a}]}]`},
			wantErr: "jmesPath[0].objectAlias is required"},
		{name: "jmesPath path must compile", params: map[string]string{"objects": `[{objectName: s, objectType: secretsmanager, jmesPath: [{path: "a[", objectAlias: a}]}]`},
			wantErr: "is not a JMESPath expression"},
		{name: "an objectAlias is used once", params: map[string]string{"objects": `
- {objectName: a, objectType: secretsmanager, objectAlias: same}
- {objectName: b, objectType: secretsmanager, objectAlias: same}
`}, wantErr: `objectAlias "same" is used twice`},
		{name: "a jmesPath objectAlias is used once", params: map[string]string{"objects": `
- {objectName: a, objectType: secretsmanager, objectAlias: user}
- {objectName: b, objectType: secretsmanager, jmesPath: [{path: user, objectAlias: user}]}
`}, wantErr: `objectAlias "user" of jmesPath "user" is already used`},
		{name: "an object is listed once", params: map[string]string{"objects": `
- {objectName: a, objectType: secretsmanager}
- {objectName: a, objectType: secretsmanager}
`}, wantErr: `object "a" is listed twice`},
		{name: "one secret under two labels, the later file wins", params: map[string]string{"objects": `
- {objectName: a, objectType: secretsmanager, objectVersionLabel: AWSCURRENT}
- {objectName: a, objectType: secretsmanager, objectVersionLabel: AWSPREVIOUS}
- {objectName: a, objectType: secretsmanager, objectVersionLabel: AWSPREVIOUS, objectAlias: previous}
`}, want: []string{"a", "previous"}},
		{name: "field names match regardless of case; filePermission is ignored", params: map[string]string{"objects": `
- ObjectName: MySecret
  OBJECTTYPE: SecretsManager
  filePermission: "0600"
`}, want: []string{"MySecret"}},
		{name: "objects is required", params: map[string]string{}, wantErr: "parameters.objects is empty"},
		{name: "objects is a list", params: map[string]string{"objects": "array:\n  - |\n    objectName: a\n"}, wantErr: "not a YAML list"},
		{name: "an entry is a mapping", params: map[string]string{"objects": "- MySecret\n"}, wantErr: "objects[0]: not a YAML mapping"},
		{name: "objects is YAML", params: map[string]string{"objects": "- objectName: [\n"}, wantErr: "not valid YAML (line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := files(t, tt.params)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ClassObjects = %v, %v; want an error with %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("files %q, want %q", got, tt.want)
			}
		})
	}
}

// ValidateSpec of a class store checks the parameters without I/O.
func TestValidateClassStore(t *testing.T) {
	p := &awsprovider.Provider{}
	st := func(params map[string]string) provider.Store {
		return provider.Store{Kind: provider.ClassKind, Name: "spc", Namespace: ns, Class: &provider.Class{Provider: "aws", Parameters: params, ServiceAccount: "sa"}}
	}
	if err := p.ValidateSpec(st(map[string]string{"objects": `[{objectName: a, objectType: secretsmanager}]`})); err != nil {
		t.Fatalf("ValidateSpec = %v", err)
	}
	if err := p.ValidateSpec(st(map[string]string{})); !errors.Is(err, provider.ErrInvalidConfig) {
		t.Fatalf("ValidateSpec without objects = %v, want ErrInvalidConfig", err)
	}
	s := st(map[string]string{"objects": `[{objectName: a, objectType: secretsmanager}]`})
	s.Class.Provider = "azure"
	if err := p.ValidateSpec(s); !errors.Is(err, provider.ErrInvalidConfig) {
		t.Fatalf("ValidateSpec of an azure class = %v, want ErrInvalidConfig", err)
	}
	if uses := p.OperatorIdentities(s); len(uses) != 0 {
		t.Fatalf("a class declares operator identities %v; it is checked when the client is built", uses)
	}
}
