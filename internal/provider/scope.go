package provider

// NamespaceScoped is implemented by providers whose clients can depend on
// the namespace they are built for (Options.Namespace: the SecretStore's
// namespace, or the namespace of the object using a ClusterSecretStore) in
// ways the fetch layer cannot see from the credential references
// (SecretKeySelector, ServiceAccountSelector and CAProvider without a
// namespace, which it finds itself): a webhook URL, header or body template
// that reads .remoteRef.namespace, or AWS session tags that name the
// requester's namespace.
//
// When ScopedToNamespace returns true, the fetch layer makes that namespace
// part of the key of the client and of its value cache, whether or not the
// store is Shareable, so a client built for one tenant never answers
// another. A provider must answer true whenever it cannot tell.
type NamespaceScoped interface {
	ScopedToNamespace(store Store) bool
}
