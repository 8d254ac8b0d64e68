// Package classobjects parses the `objects` and `pathTranslation`
// parameters of a SecretProviderClass with provider aws (the AWS provider of
// the Secrets Store CSI driver, aws/secrets-store-csi-driver-provider-aws):
// the Secrets Manager secrets and Parameter Store parameters a class
// provides, the jmesPath entries that pick string fields out of JSON values,
// and the file name each is known by. It does no I/O; the aws provider
// (class.go) reads the objects.
package classobjects

import (
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/jmespath/go-jmespath"
	yaml "go.yaml.in/yaml/v3"

	"github.com/keyferry/keyferry/internal/provider"
)

// Types of an object (objectType).
const (
	TypeSecretsManager = "secretsmanager"
	TypeSSMParameter   = "ssmparameter"
)

// maxObjectsLen bounds the `objects` parameter keyferry parses (etcd caps a
// whole SecretProviderClass at 1.5MB).
const maxObjectsLen = 1 << 20

// Object is one entry of a SecretProviderClass's `objects` parameter
// (provider aws), trimmed, with its type resolved.
type Object struct {
	// Name is the secret's or parameter's name or ARN (objectName).
	Name string
	// Type is TypeSecretsManager or TypeSSMParameter (objectType, or the
	// service of an ARN Name).
	Type string
	// Alias is the file name the object is known by (objectAlias); empty
	// means Name.
	Alias string
	// Version selects a version (objectVersion): a Secrets Manager
	// VersionId, or a Parameter Store version number.
	Version string
	// VersionLabel selects a version by label (objectVersionLabel): a
	// Secrets Manager staging label, or a Parameter Store label.
	VersionLabel string
	// JMESPath lists the string fields of the object's JSON value that are
	// files of their own (jmesPath).
	JMESPath []JMESPathEntry
	// Failover is what is read in the failover region instead of the
	// object itself (failoverObject); nil reads the same object.
	Failover *FailoverObject
}

// JMESPathEntry is one jmesPath entry of an object.
type JMESPathEntry struct {
	// Path is a JMESPath expression that must select a string.
	Path string
	// Alias is the file name of the selected string (objectAlias).
	Alias string
}

// FailoverObject is an object's failoverObject: the object read in the
// failover region.
type FailoverObject struct {
	Name, Version, VersionLabel string
}

// PathTranslation is how a '/' in an object's name or alias becomes part of
// its file name (pathTranslation): replaced by Char, or, when Char is 0,
// kept (a leading '/' is dropped).
type PathTranslation struct{ Char rune }

// ParsePathTranslation reads the pathTranslation parameter as the AWS
// provider does: empty means '_', "False" (any case) turns translation off,
// any other value must be one character.
func ParsePathTranslation(s string) (PathTranslation, error) {
	switch {
	case s == "":
		return PathTranslation{Char: '_'}, nil
	case strings.EqualFold(s, "false"):
		return PathTranslation{}, nil
	}
	r := []rune(s)
	if len(r) != 1 || r[0] == 0 {
		return PathTranslation{}, fmt.Errorf("pathTranslation must be False or a single character")
	}
	return PathTranslation{Char: r[0]}, nil
}

// File turns a name or alias into a file name.
func (t PathTranslation) File(name string) string {
	if t.Char == 0 {
		return strings.TrimLeft(name, "/")
	}
	return strings.ReplaceAll(name, "/", string(t.Char))
}

// FileName is the object's file name: its alias, or its name.
func (o Object) FileName(t PathTranslation) string {
	if o.Alias != "" {
		return t.File(o.Alias)
	}
	return t.File(o.Name)
}

// Parse parses the `objects` parameter of a SecretProviderClass
// with provider aws: a YAML list of objects. Field names match regardless
// of case and unknown fields (filePermission) are ignored, as the AWS
// provider reads them; values are trimmed. It checks each object as the AWS
// provider does, except the regions of ARNs (CheckRegions). Errors name the
// entry and field, and quote only names and paths, never a whole entry.
func Parse(s string, t PathTranslation) ([]Object, error) {
	return provider.ParseClassParam(objectsParam, s, func(s string) ([]Object, error) { return parse(s, t) })
}

// objectsParam is the `objects` parameter for provider.ParseClassParam.
var objectsParam = provider.ClassParam{
	Name:    "objects",
	MaxLen:  maxObjectsLen,
	IfEmpty: "objects is empty: list the secrets and parameters to synchronize",
}

// parse is Parse after provider.ParseClassParam's checks, which also
// recover a panic of the YAML decoder or the JMESPath compiler.
func parse(s string, t PathTranslation) (objs []Object, err error) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(s), &doc); err != nil {
		return nil, fmt.Errorf("objects is not valid YAML (%s)", provider.YAMLErrorLine(err))
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, fmt.Errorf("objects is not a YAML list")
	}
	list := provider.ResolveYAMLAlias(doc.Content[0])
	if list.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("objects is not a YAML list")
	}
	if len(list.Content) == 0 {
		return nil, fmt.Errorf("objects is an empty list")
	}
	for i, item := range list.Content {
		o, err := parseObject(item)
		if err != nil {
			return nil, fmt.Errorf("objects[%d]: %v", i, err)
		}
		if err := checkObject(&o, t); err != nil {
			return nil, fmt.Errorf("objects[%d]: %v", i, err)
		}
		objs = append(objs, o)
	}
	if err := checkDuplicates(objs); err != nil {
		return nil, fmt.Errorf("objects: %v", err)
	}
	return objs, nil
}

// fields walks a mapping, calling set with each key (lower-cased) and its
// value.
func fields(m *yaml.Node, set func(key string, v *yaml.Node) error) error {
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := provider.ResolveYAMLAlias(m.Content[i])
		if k.Kind != yaml.ScalarNode {
			continue
		}
		if err := set(strings.ToLower(k.Value), provider.ResolveYAMLAlias(m.Content[i+1])); err != nil {
			return err
		}
	}
	return nil
}

// scalar reads a single value into dst; null is empty.
func scalar(field string, v *yaml.Node, dst *string) error {
	switch {
	case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
		*dst = ""
	case v.Kind == yaml.ScalarNode:
		*dst = strings.TrimSpace(v.Value)
	default:
		return fmt.Errorf("%s is not a single value", field)
	}
	return nil
}

// parseObject reads one entry, which must be a mapping.
func parseObject(item *yaml.Node) (Object, error) {
	item = provider.ResolveYAMLAlias(item)
	if item.Kind != yaml.MappingNode {
		return Object{}, fmt.Errorf("not a YAML mapping of objectName, objectType, ...")
	}
	var o Object
	err := fields(item, func(key string, v *yaml.Node) error {
		switch key {
		case "objectname":
			return scalar("objectName", v, &o.Name)
		case "objecttype":
			if err := scalar("objectType", v, &o.Type); err != nil {
				return err
			}
			o.Type = strings.ToLower(o.Type)
		case "objectalias":
			return scalar("objectAlias", v, &o.Alias)
		case "objectversion":
			return scalar("objectVersion", v, &o.Version)
		case "objectversionlabel":
			return scalar("objectVersionLabel", v, &o.VersionLabel)
		case "jmespath":
			entries, err := parseJMESPath(v)
			if err != nil {
				return err
			}
			o.JMESPath = entries
		case "failoverobject":
			f, err := parseFailover(v)
			if err != nil {
				return err
			}
			o.Failover = f
		}
		return nil // filePermission and unknown fields
	})
	return o, err
}

func parseJMESPath(v *yaml.Node) ([]JMESPathEntry, error) {
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		return nil, nil
	}
	if v.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("jmesPath is not a list")
	}
	var out []JMESPathEntry
	for i, item := range v.Content {
		item = provider.ResolveYAMLAlias(item)
		if item.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("jmesPath[%d] is not a mapping of path and objectAlias", i)
		}
		var e JMESPathEntry
		err := fields(item, func(key string, v *yaml.Node) error {
			switch key {
			case "path":
				return scalar("path", v, &e.Path)
			case "objectalias":
				return scalar("objectAlias", v, &e.Alias)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("jmesPath[%d]: %v", i, err)
		}
		out = append(out, e)
	}
	return out, nil
}

func parseFailover(v *yaml.Node) (*FailoverObject, error) {
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		return nil, nil
	}
	if v.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("failoverObject is not a mapping")
	}
	var f FailoverObject
	err := fields(v, func(key string, v *yaml.Node) error {
		switch key {
		case "objectname":
			return scalar("failoverObject.objectName", v, &f.Name)
		case "objectversion":
			return scalar("failoverObject.objectVersion", v, &f.Version)
		case "objectversionlabel":
			return scalar("failoverObject.objectVersionLabel", v, &f.VersionLabel)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if f == (FailoverObject{}) {
		return nil, nil
	}
	return &f, nil
}

// checkObject checks one object as the AWS provider does, without regions,
// and resolves its Type.
func checkObject(o *Object, t PathTranslation) error {
	if o.Name == "" {
		return fmt.Errorf("objectName is required")
	}
	typ, err := objectType(o.Name, o.Type)
	if err != nil {
		return fmt.Errorf("object %q: %v", o.Name, err)
	}
	o.Type = typ
	if o.Type == TypeSSMParameter && o.Version != "" && o.VersionLabel != "" {
		return fmt.Errorf("object %q: a parameter takes objectVersion or objectVersionLabel, not both", o.Name)
	}
	if err := checkFileName(o.FileName(t)); err != nil {
		return fmt.Errorf("object %q: %v", o.Name, err)
	}
	for i, e := range o.JMESPath {
		switch {
		case e.Path == "":
			return fmt.Errorf("object %q: jmesPath[%d].path is required", o.Name, i)
		case e.Alias == "":
			return fmt.Errorf("object %q: jmesPath[%d].objectAlias is required", o.Name, i)
		}
		if _, err := jmespath.Compile(e.Path); err != nil {
			return fmt.Errorf("object %q: jmesPath[%d].path %q is not a JMESPath expression", o.Name, i, e.Path)
		}
		if err := checkFileName(t.File(e.Alias)); err != nil {
			return fmt.Errorf("object %q: jmesPath[%d].objectAlias: %v", o.Name, i, err)
		}
	}
	if f := o.Failover; f != nil {
		switch {
		case f.Name == "":
			return fmt.Errorf("object %q: failoverObject.objectName is required", o.Name)
		case o.Alias == "":
			return fmt.Errorf("object %q: objectAlias is required with failoverObject", o.Name)
		case f.Version != o.Version:
			return fmt.Errorf("object %q: failoverObject.objectVersion must be the object's objectVersion", o.Name)
		case o.Type == TypeSSMParameter && f.Version != "" && f.VersionLabel != "":
			return fmt.Errorf("object %q: a failover parameter takes objectVersion or objectVersionLabel, not both", o.Name)
		}
		if _, err := objectType(f.Name, o.Type); err != nil {
			return fmt.Errorf("object %q: failoverObject: %v", o.Name, err)
		}
	}
	return nil
}

// objectType resolves an object's type: objectType, or the service of an
// ARN name. Both must agree when both are given.
func objectType(name, typ string) (string, error) {
	var service string
	if strings.HasPrefix(name, "arn:") {
		a, err := arn.Parse(name)
		if err != nil {
			return "", fmt.Errorf("objectName is not a valid ARN")
		}
		switch a.Service {
		case "secretsmanager":
			service = TypeSecretsManager
		case "ssm":
			service = TypeSSMParameter
		default:
			if typ == "" {
				return "", fmt.Errorf("the ARN's service %q is not secretsmanager or ssm", a.Service)
			}
		}
	}
	switch typ {
	case "":
		if service == "" {
			return "", fmt.Errorf("objectType is required (secretsmanager or ssmparameter) unless objectName is an ARN")
		}
		return service, nil
	case TypeSecretsManager, TypeSSMParameter:
		if service != "" && service != typ {
			return "", fmt.Errorf("objectType %s does not match the ARN's service", typ)
		}
		return typ, nil
	default:
		return "", fmt.Errorf("objectType %q is not secretsmanager or ssmparameter", typ)
	}
}

// checkFileName refuses file names that leave the mount directory or that
// no file can have.
func checkFileName(f string) error {
	if f == "" {
		return fmt.Errorf("the file name is empty")
	}
	if strings.ContainsRune(f, 0) {
		return fmt.Errorf("the file name %q holds a NUL character", f)
	}
	for seg := range strings.SplitSeq(f, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("the file name %q has an empty, '.' or '..' path element", f)
		}
	}
	return nil
}

// checkDuplicates refuses what the AWS provider refuses: an object listed
// twice (the same objectName, objectAlias and objectVersionLabel), and an
// objectAlias (of an object or a jmesPath entry) used twice.
func checkDuplicates(objs []Object) error {
	type seen struct{ alias, label string }
	names := map[string][]seen{}
	aliases := map[string]bool{}
	for _, o := range objs {
		for _, s := range names[o.Name] {
			if s.alias == o.Alias && s.label == o.VersionLabel {
				return fmt.Errorf("object %q is listed twice with the same objectAlias and objectVersionLabel", o.Name)
			}
		}
		names[o.Name] = append(names[o.Name], seen{alias: o.Alias, label: o.VersionLabel})
		if o.Alias != "" {
			if aliases[o.Alias] {
				return fmt.Errorf("objectAlias %q is used twice", o.Alias)
			}
			aliases[o.Alias] = true
		}
		for _, e := range o.JMESPath {
			if aliases[e.Alias] {
				return fmt.Errorf("objectAlias %q of jmesPath %q is already used", e.Alias, e.Path)
			}
			aliases[e.Alias] = true
		}
	}
	return nil
}

// CheckRegions checks the ARNs of objects against the regions they are
// read in, as the AWS provider does: an object's ARN must be in region, a
// failoverObject's ARN in failoverRegion, and a failoverObject needs a
// failoverRegion.
func CheckRegions(objs []Object, region, failoverRegion string) error {
	for i, o := range objs {
		if err := arnInRegion(o.Name, region); err != nil {
			return fmt.Errorf("objects[%d]: %v", i, err)
		}
		if o.Failover == nil {
			continue
		}
		if failoverRegion == "" {
			return fmt.Errorf("objects[%d]: object %q has a failoverObject but parameters.failoverRegion is not set", i, o.Name)
		}
		if err := arnInRegion(o.Failover.Name, failoverRegion); err != nil {
			return fmt.Errorf("objects[%d]: failoverObject: %v", i, err)
		}
	}
	return nil
}

func arnInRegion(name, region string) error {
	if !strings.HasPrefix(name, "arn:") {
		return nil
	}
	a, err := arn.Parse(name)
	if err != nil {
		return fmt.Errorf("objectName is not a valid ARN")
	}
	if a.Region != region {
		return fmt.Errorf("the ARN %q is in region %q, not %q", name, a.Region, region)
	}
	return nil
}
