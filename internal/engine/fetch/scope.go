package fetch

import (
	"reflect"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
)

var (
	secretKeySelectorType = reflect.TypeOf(esv1.SecretKeySelector{})
	serviceAccountType    = reflect.TypeOf(esv1.ServiceAccountSelector{})
	caProviderType        = reflect.TypeOf(esv1.CAProvider{})
)

// NeedsNamespace says whether a ClusterSecretStore's provider configuration
// has a credential reference without a namespace: such a reference resolves
// in the namespace of the object using the store, so its client (and cache)
// cannot be shared across namespaces.
func NeedsNamespace(spec *esv1.SecretStoreSpec) bool {
	if spec == nil || spec.Provider == nil {
		return false
	}
	return walk(reflect.ValueOf(spec.Provider).Elem())
}

func walk(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Pointer:
		return !v.IsNil() && walk(v.Elem())
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			if walk(v.Index(i)) {
				return true
			}
		}
	case reflect.Struct:
		switch v.Type() {
		case secretKeySelectorType:
			sel := v.Interface().(esv1.SecretKeySelector)
			return sel.Name != "" && (sel.Namespace == nil || *sel.Namespace == "")
		case serviceAccountType:
			sel := v.Interface().(esv1.ServiceAccountSelector)
			return sel.Name != "" && (sel.Namespace == nil || *sel.Namespace == "")
		case caProviderType:
			sel := v.Interface().(esv1.CAProvider)
			return sel.Namespace == nil || *sel.Namespace == ""
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() && walk(v.Field(i)) {
				return true
			}
		}
	}
	return false
}
