// This file serves SecretProviderClasses with provider aws (the AWS
// provider of the Secrets Store CSI driver), for the SecretSync front-end:
// the class's parameters (ClassParams), the files its objects provide
// (ClassObjects), and a client that reads those files with the AWS
// provider's semantics: Secrets Manager secrets and Parameter Store
// parameters by name or ARN, versions and labels, jmesPath fields, a
// failover region, and the identity of the SecretSync's ServiceAccount
// (IRSA, or EKS Pod Identity: classpodidentity.go).

package aws

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/jmespath/go-jmespath"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/provider/aws/classobjects"
)

// ClassName is the SecretProviderClass spec.provider the provider serves.
const ClassName = "aws"

// Parts of a file a kubernetes.io/tls Secret takes, named after the Secret
// keys that hold them.
const (
	partCert = provider.ClassPartCert // the certificates
	partKey  = provider.ClassPartKey  // the private key
)

var _ provider.ClassProvider = (*Provider)(nil)

// RegionFromEnv is the region the operator's environment names
// (AWS_REGION, or AWS_DEFAULT_REGION), which a SecretProviderClass without
// a region parameter uses.
func RegionFromEnv() string {
	if r := os.Getenv("AWS_REGION"); r != "" {
		return r
	}
	return os.Getenv("AWS_DEFAULT_REGION")
}

// ClassParams are the parameters of a SecretProviderClass with provider aws
// that keyferry serves.
type ClassParams struct {
	// Region is where the objects are read (region); empty means the
	// provider's DefaultRegion.
	Region string
	// FailoverRegion is read when Region fails with a server error or is
	// unreachable (failoverRegion).
	FailoverRegion string
	// PodIdentity reads with EKS Pod Identity credentials of the
	// SecretSync's ServiceAccount (usePodIdentity) instead of IRSA.
	PodIdentity bool
	// IPv6 reaches the Pod Identity agent at its IPv6 address
	// (preferredAddressType ipv6).
	IPv6 bool
	// Translation makes file names of names holding '/'
	// (pathTranslation).
	Translation classobjects.PathTranslation
	// Objects are the secrets and parameters the class provides (objects).
	Objects []classobjects.Object
}

// ParseClassParams reads a SecretProviderClass's parameters as the AWS
// provider does. Errors name the parameter, never a value of objects.
func ParseClassParams(params map[string]string) (ClassParams, error) {
	get := func(k string) string { return strings.TrimSpace(params[k]) }
	var c ClassParams
	c.Region, c.FailoverRegion = get("region"), get("failoverRegion")
	if c.FailoverRegion != "" && c.FailoverRegion == c.Region {
		return c, fmt.Errorf("parameters.failoverRegion cannot be the same as parameters.region")
	}
	var err error
	if s := get("usePodIdentity"); s != "" {
		if c.PodIdentity, err = strconv.ParseBool(s); err != nil {
			return c, fmt.Errorf("parameters.usePodIdentity: %q is not true or false", s)
		}
	}
	switch t := strings.ToLower(get("preferredAddressType")); t {
	case "", "ipv4":
	case "ipv6":
		c.IPv6 = true
	default:
		return c, fmt.Errorf("parameters.preferredAddressType: %q is not ipv4 or ipv6", t)
	}
	if c.Translation, err = classobjects.ParsePathTranslation(params["pathTranslation"]); err != nil {
		return c, fmt.Errorf("parameters.%v", err)
	}
	if c.Objects, err = classobjects.Parse(params["objects"], c.Translation); err != nil {
		return c, fmt.Errorf("parameters.%v", err)
	}
	if c.Region != "" {
		if err := classobjects.CheckRegions(c.Objects, c.Region, c.FailoverRegion); err != nil {
			return c, fmt.Errorf("parameters.%v", err)
		}
	}
	return c, nil
}

// classFile is what one file of a class reads: an object, or with jmes >= 0
// its jmesPath entry of that index.
type classFile struct {
	obj  classobjects.Object
	jmes int
}

// classFiles maps the file names the objects provide to what they read. As
// when the AWS provider writes them as files, a later object with the same
// file name replaces an earlier one.
func classFiles(objs []classobjects.Object, t classobjects.PathTranslation) map[string]classFile {
	out := map[string]classFile{}
	for _, o := range objs {
		out[o.FileName(t)] = classFile{obj: o, jmes: -1}
		for i, e := range o.JMESPath {
			out[t.File(e.Alias)] = classFile{obj: o, jmes: i}
		}
	}
	return out
}

// ClassObjects implements provider.ClassProvider: it checks the parameters
// (ParseClassParams) and returns the files the objects provide, sorted by
// name. A file's Ref is its name; its parts' refs add the version
// "tls.crt" or "tls.key" (the versions of a class's objects are in its
// parameters, never in refs).
func (p *Provider) ClassObjects(params map[string]string) ([]provider.ClassObject, error) {
	cp, err := ParseClassParams(params)
	if err != nil {
		return nil, err
	}
	files := classFiles(cp.Objects, cp.Translation)
	return provider.ClassFileObjects(maps.Keys(files)), nil
}

// validateClass is ValidateSpec for a class store.
func validateClass(store provider.Store) error {
	if err := provider.CheckClassProvider(store, ClassName); err != nil {
		return err
	}
	if _, err := ParseClassParams(store.Class.Parameters); err != nil {
		return fmt.Errorf("%w: %v", provider.ErrInvalidConfig, err)
	}
	return nil
}

// newClassClient builds the client of a class store: Secrets Manager and
// Parameter Store clients of the class's region (and failover region),
// with credentials of the role the SecretSync's ServiceAccount names.
func (p *Provider) newClassClient(ctx context.Context, opts provider.Options) (provider.Client, error) {
	cls, name := opts.Store.Class, opts.Store.Name
	cp, err := ParseClassParams(cls.Parameters)
	if err != nil {
		return nil, fmt.Errorf("%w: SecretProviderClass %s: %v", provider.ErrInvalidConfig, name, err)
	}
	region := cp.Region
	if region == "" {
		region = p.DefaultRegion
	}
	if region == "" {
		return nil, fmt.Errorf("%w: SecretProviderClass %s sets no parameters.region and keyferry has no default region (AWS_REGION): set parameters.region (keyferry has no node whose topology.kubernetes.io/region it could read)", provider.ErrInvalidConfig, name)
	}
	if region == cp.FailoverRegion {
		return nil, fmt.Errorf("%w: SecretProviderClass %s: parameters.failoverRegion %s is the region the objects are read in", provider.ErrInvalidConfig, name, region)
	}
	if err := classobjects.CheckRegions(cp.Objects, region, cp.FailoverRegion); err != nil {
		return nil, fmt.Errorf("%w: SecretProviderClass %s: parameters.%v", provider.ErrInvalidConfig, name, err)
	}
	var auth classAuthn
	if cp.PodIdentity {
		auth.podIdentity = p.podIdentity(opts, cp.IPv6)
	} else if auth.auth, err = p.classAuth(ctx, opts); err != nil {
		return nil, err
	}
	c := &classClient{class: name, files: classFiles(cp.Objects, cp.Translation)}
	if c.primary, err = p.classRegion(ctx, region, auth, opts); err != nil {
		return nil, err
	}
	if cp.FailoverRegion != "" {
		if c.failover, err = p.classRegion(ctx, cp.FailoverRegion, auth, opts); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// classAuth is the auth of a class's clients: the web identity (IRSA) of
// the SecretSync's ServiceAccount, whose eks.amazonaws.com/role-arn
// annotation names the role, as the AWS provider reads it. A ServiceAccount
// without that annotation would leave keyferry only its own credentials
// (the default chain): that is refused unless the operator's Policy grants
// the namespace the AWS identity (--allow-ambient-identity).
func (p *Provider) classAuth(ctx context.Context, opts provider.Options) (esv1.AWSAuth, error) {
	ns, sa := opts.Store.Namespace, opts.Store.Class.ServiceAccount
	acct, err := provider.ClassServiceAccount(ctx, opts)
	if err != nil {
		return esv1.AWSAuth{}, err
	}
	if acct.Annotations[roleARNAnnotation] != "" {
		return esv1.AWSAuth{JWTAuth: &esv1.AWSJWTAuth{ServiceAccountRef: &esv1.ServiceAccountSelector{Name: sa}}}, nil
	}
	if opts.Policy.Grants(provider.IdentityAWS, ns) {
		return esv1.AWSAuth{}, nil
	}
	return esv1.AWSAuth{}, fmt.Errorf("service account %s/%s has no %s annotation, so keyferry would read SecretProviderClass %s with its own pod's AWS credentials; %w: annotate the service account with the IAM role to assume (IRSA), or ask the platform team to run keyferry with --allow-ambient-identity=%s/%s",
		ns, sa, roleARNAnnotation, opts.Store.Name, provider.ErrOperatorIdentity, ns, provider.IdentityAWS)
}

// classAuthn is how a class's clients authenticate: auth, or when set
// podIdentity.
type classAuthn struct {
	auth        esv1.AWSAuth
	podIdentity aws.CredentialsProvider
}

// regionClients reads one region.
type regionClients struct {
	region string
	sm     *secretsManager
	ps     *parameterStore
}

// classRegion builds the clients of one region with auth, through the same
// configuration (credentials, retries, endpoints) as a SecretStore's.
func (p *Provider) classRegion(ctx context.Context, region string, auth classAuthn, opts provider.Options) (*regionClients, error) {
	spec := &esv1.AWSProvider{Service: esv1.AWSServiceSecretsManager, Region: region, Auth: auth.auth}
	opts.Namespace = opts.Store.Namespace
	cfg, err := p.config(ctx, spec, opts)
	if err != nil {
		return nil, err
	}
	if auth.podIdentity != nil {
		// Replaces the default chain config set: it is never asked.
		cfg.Credentials = markCredentialErrors{auth.podIdentity}
	}
	log := opts.Log.WithValues("region", region)
	return &regionClients{
		region: region,
		sm: newSecretsManager(base{cfg: cfg, log: log.WithValues("service", string(esv1.AWSServiceSecretsManager))},
			secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) {
				if p.Endpoints.SecretsManager != "" {
					o.BaseEndpoint = aws.String(p.Endpoints.SecretsManager)
				}
			})),
		ps: newParameterStore(base{cfg: cfg, log: log.WithValues("service", string(esv1.AWSServiceParameterStore))},
			ssm.NewFromConfig(cfg, func(o *ssm.Options) {
				if p.Endpoints.SSM != "" {
					o.BaseEndpoint = aws.String(p.Endpoints.SSM)
				}
			})),
	}, nil
}

// classClient reads the files of one class. It does not list
// (provider.Lister): a SecretProviderClass lists its objects.
type classClient struct {
	class    string
	files    map[string]classFile
	primary  *regionClients
	failover *regionClients // nil without failoverRegion
}

var (
	_ provider.Client      = (*classClient)(nil)
	_ provider.BatchGetter = (*classClient)(nil)
)

// lookup resolves a ref ClassObjects returned: a file, or a part of one.
func (c *classClient) lookup(r provider.Ref) (classFile, string, error) {
	if r.Metadata {
		return classFile{}, "", fmt.Errorf("%w: SecretProviderClass %s serves files, not metadata", provider.ErrMetadataNotSupported, c.class)
	}
	f, ok := c.files[r.Key]
	if !ok || (r.Version != "" && r.Version != partCert && r.Version != partKey) {
		return classFile{}, "", fmt.Errorf("%w: %q is not an object of SecretProviderClass %s", provider.ErrInvalidConfig, r.String(), c.class)
	}
	return f, r.Version, nil
}

func (c *classClient) GetSecret(ctx context.Context, ref provider.Ref) (provider.Value, error) {
	return provider.GetFromBatch(ctx, c, ref)
}

// classWant is a file, or a part of it, that a ref asks for.
type classWant struct {
	f    classFile
	part string
}

// objectRead is one read of an object in a region: which service, and the
// ref its client reads. Objects read the same way share one read.
type objectRead struct {
	typ string
	ref provider.Ref
	// stage is set for a secret with objectVersion and objectVersionLabel,
	// read by VersionId and VersionStage together.
	stage string
}

// read is how obj is read in a region; failover reads its failoverObject.
func read(obj classobjects.Object, failover bool) objectRead {
	name, version, label := obj.Name, obj.Version, obj.VersionLabel
	if f := obj.Failover; failover && f != nil {
		name = f.Name
		if f.Version != "" {
			version = f.Version
		}
		if f.VersionLabel != "" {
			label = f.VersionLabel
		}
	}
	r := objectRead{typ: obj.Type, ref: provider.Ref{Key: name}}
	switch {
	case obj.Type == classobjects.TypeSSMParameter && version != "":
		r.ref.Version = version
	case obj.Type == classobjects.TypeSSMParameter:
		r.ref.Version = label
	case version != "":
		r.ref.Version, r.stage = versionIDPrefix+version, label
	default:
		r.ref.Version = label
	}
	return r
}

// fetch reads reads in one region: secrets and parameters each through
// their client's batching (BatchGetSecretValue, GetParameters), secrets
// with both a VersionId and a stage one by one.
func (rc *regionClients) fetch(ctx context.Context, reads []objectRead) (map[objectRead]provider.Value, map[objectRead]error) {
	vals := map[objectRead]provider.Value{}
	errs := map[objectRead]error{}
	var smRefs, psRefs []provider.Ref
	for _, r := range reads {
		switch {
		case r.stage != "":
			v, err := rc.sm.getVersionAndStage(ctx, r.ref.Key, strings.TrimPrefix(r.ref.Version, versionIDPrefix), r.stage)
			if err != nil {
				errs[r] = err
			} else {
				vals[r] = v
			}
		case r.typ == classobjects.TypeSSMParameter:
			psRefs = append(psRefs, r.ref)
		default:
			smRefs = append(smRefs, r.ref)
		}
	}
	for typ, refs := range map[string][]provider.Ref{classobjects.TypeSecretsManager: smRefs, classobjects.TypeSSMParameter: psRefs} {
		if len(refs) == 0 {
			continue
		}
		var got map[provider.Ref]provider.Value
		var failed map[provider.Ref]error
		if typ == classobjects.TypeSSMParameter {
			got, failed = rc.ps.GetSecrets(ctx, refs)
		} else {
			got, failed = rc.sm.GetSecrets(ctx, refs)
		}
		for ref, v := range got {
			vals[objectRead{typ: typ, ref: ref}] = v
		}
		for ref, err := range failed {
			errs[objectRead{typ: typ, ref: ref}] = fmt.Errorf("region %s: %w", rc.region, err)
		}
	}
	return vals, errs
}

// getVersionAndStage reads the version of a secret that has both
// VersionId and VersionStage (objectVersion and objectVersionLabel).
func (c *secretsManager) getVersionAndStage(ctx context.Context, id, versionID, stage string) (provider.Value, error) {
	out, err := c.api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(id), VersionId: aws.String(versionID), VersionStage: aws.String(stage),
	})
	if err != nil {
		return provider.Value{}, fmt.Errorf("reading secret %q version %q with label %q from AWS Secrets Manager: %w", id, versionID, stage, classify(err))
	}
	return secretValue(id, out.SecretString, out.SecretBinary, out.VersionId)
}

// GetSecrets reads the objects of refs once each (however many of their
// files and parts are asked for), batched per service, then derives each
// file: the value, a jmesPath field of it, or a tls part. An object whose
// primary region fails with a server error or cannot be reached is read in
// the failover region.
func (c *classClient) GetSecrets(ctx context.Context, refs []provider.Ref) (map[provider.Ref]provider.Value, map[provider.Ref]error) {
	vals := map[provider.Ref]provider.Value{}
	errs := map[provider.Ref]error{}
	wants := map[provider.Ref]classWant{}
	var reads []objectRead
	seen := map[objectRead]bool{}
	for _, r := range refs {
		f, part, err := c.lookup(r)
		if err != nil {
			errs[r] = err
			continue
		}
		wants[r] = classWant{f: f, part: part}
		if rd := read(f.obj, false); !seen[rd] {
			seen[rd] = true
			reads = append(reads, rd)
		}
	}
	got, failed := c.primary.fetch(ctx, reads)
	if c.failover != nil {
		c.failOver(ctx, wants, got, failed)
	}
	for r, w := range wants {
		rd := read(w.f.obj, false)
		if err, ok := failed[rd]; ok {
			errs[r] = err
			continue
		}
		raw, ok := got[rd]
		if !ok {
			errs[r] = fmt.Errorf("%w: object %q", provider.ErrNotFound, w.f.obj.Name)
			continue
		}
		b, err := fileContent(w.f, w.part, raw.Data)
		if err != nil {
			errs[r] = err
			continue
		}
		vals[r] = provider.Value{Data: b, Version: raw.Version}
	}
	return vals, errs
}

// failOver reads in the failover region the objects whose primary read
// failed with a server error (5xx) or could not reach AWS, and replaces
// their results by the failover region's. A client error (4xx: not found,
// forbidden, throttled) in the primary region is not failed over, as in
// the AWS provider.
func (c *classClient) failOver(ctx context.Context, wants map[provider.Ref]classWant, got map[objectRead]provider.Value, failed map[objectRead]error) {
	byFailover := map[objectRead]objectRead{}
	var reads []objectRead
	for _, w := range wants {
		primary := read(w.f.obj, false)
		err, ok := failed[primary]
		if !ok || !serverSide(err) {
			continue
		}
		fo := read(w.f.obj, true)
		if _, dup := byFailover[fo]; !dup {
			reads = append(reads, fo)
		}
		byFailover[fo] = primary
	}
	if len(reads) == 0 {
		return
	}
	fvals, ferrs := c.failover.fetch(ctx, reads)
	for _, w := range wants {
		primary := read(w.f.obj, false)
		if _, ok := failed[primary]; !ok || !serverSide(failed[primary]) {
			continue
		}
		fo := read(w.f.obj, true)
		if v, ok := fvals[fo]; ok {
			delete(failed, primary)
			got[primary] = v
		} else if err, ok := ferrs[fo]; ok {
			failed[primary] = fmt.Errorf("%w (and in failover region %s: %v)", failed[primary], c.failover.region, err)
		}
	}
}

// serverSide says whether err is AWS failing (5xx) or unreachable, rather
// than refusing the request.
func serverSide(err error) bool {
	if errors.Is(err, provider.ErrUnreachable) {
		return true
	}
	var respErr *smithyhttp.ResponseError
	return errors.As(err, &respErr) && respErr.HTTPStatusCode() >= http.StatusInternalServerError
}

// fileContent derives a file's content from its object's value: the value
// itself, or the string a jmesPath entry selects from the value's JSON,
// then, with a part, its certificates or private key. Errors name the
// object and path, never the value.
func fileContent(f classFile, part string, raw []byte) ([]byte, error) {
	b := raw
	if f.jmes >= 0 {
		e := f.obj.JMESPath[f.jmes]
		var err error
		if b, err = jmesField(raw, e.Path); err != nil {
			return nil, fmt.Errorf("%w: object %q, jmesPath %q (objectAlias %q): %v", provider.ErrBadResponse, f.obj.Name, e.Path, e.Alias, err)
		}
	}
	switch part {
	case partCert:
		return pemPart(b, f.obj.Name, func(t string) bool { return t == "CERTIFICATE" }, "certificate")
	case partKey:
		return pemPart(b, f.obj.Name, func(t string) bool { return strings.HasSuffix(t, "PRIVATE KEY") }, "private key")
	}
	return b, nil
}

// jmesField selects the string path names in the JSON document raw.
func jmesField(raw []byte, path string) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("the JMESPath expression failed")
		}
	}()
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("the value is not JSON")
	}
	v, err := jmespath.Search(path, doc)
	if err != nil {
		return nil, fmt.Errorf("the JMESPath expression failed")
	}
	switch s := v.(type) {
	case nil:
		return nil, fmt.Errorf("the path selects nothing")
	case string:
		return []byte(s), nil
	default:
		return nil, fmt.Errorf("the path selects a %T, not a string", v)
	}
}

// pemPart keeps the PEM blocks of b whose type keep accepts: all the
// certificates, or the first private key.
func pemPart(b []byte, obj string, keep func(string) bool, what string) ([]byte, error) {
	var out []byte
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if keep(blk.Type) {
			out = append(out, pem.EncodeToMemory(&pem.Block{Type: blk.Type, Bytes: blk.Bytes})...)
			if what == "private key" {
				break
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: object %q holds no PEM %s", provider.ErrBadResponse, obj, what)
	}
	return out, nil
}

// Validate obtains the primary region's credentials (the role of the
// ServiceAccount). It reads no object.
func (c *classClient) Validate(ctx context.Context) error { return c.primary.sm.Validate(ctx) }

// Close releases nothing.
func (c *classClient) Close(context.Context) error { return nil }
