package webhook

import (
	"text/template"
	"text/template/parse"

	"github.com/keyferry/keyferry/internal/provider"
)

// ScopedToNamespace says whether a client for store depends on the namespace
// it is built for beyond its Secret references: when a template (url,
// headers, body or result.jsonPath) may read .remoteRef.namespace. Two
// tenants using identical stores then get separate clients and caches.
//
// The check is conservative: a template counts as reading the namespace when
// it names a field "namespace" anywhere, or hands over the whole template
// data or the whole .remoteRef (to a function, range, with, a variable or
// a nested template), through which the namespace could be reached. An
// invalid template counts too (it never renders anyway).
func (p *Provider) ScopedToNamespace(store provider.Store) bool {
	spec, err := specOf(store)
	if err != nil {
		return true
	}
	tpls, err := p.parsed.templatesOf(spec)
	if err != nil {
		return true
	}
	all := []*template.Template{tpls.url, tpls.body, tpls.jsonPath}
	for _, h := range tpls.headers {
		all = append(all, h.tpl)
	}
	for _, t := range all {
		if t != nil && readsNamespace(t) {
			return true
		}
	}
	return false
}

// readsNamespace reports whether any template defined in t may read the
// requester's namespace.
func readsNamespace(t *template.Template) bool {
	for _, d := range t.Templates() {
		if d.Tree != nil && d.Root != nil && nodeReadsNamespace(d.Root) {
			return true
		}
	}
	return false
}

// nodeReadsNamespace walks a template's parse tree.
func nodeReadsNamespace(n parse.Node) bool {
	switch n := n.(type) {
	case nil:
		return false
	case *parse.ListNode:
		if n == nil {
			return false
		}
		for _, c := range n.Nodes {
			if nodeReadsNamespace(c) {
				return true
			}
		}
	case *parse.ActionNode:
		return nodeReadsNamespace(n.Pipe)
	case *parse.PipeNode:
		if n == nil {
			return false
		}
		for _, v := range n.Decl {
			if nodeReadsNamespace(v) {
				return true
			}
		}
		for _, c := range n.Cmds {
			if nodeReadsNamespace(c) {
				return true
			}
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			if nodeReadsNamespace(a) {
				return true
			}
		}
	case *parse.IfNode:
		return branchReadsNamespace(&n.BranchNode)
	case *parse.RangeNode:
		return branchReadsNamespace(&n.BranchNode)
	case *parse.WithNode:
		return branchReadsNamespace(&n.BranchNode)
	case *parse.TemplateNode:
		return nodeReadsNamespace(n.Pipe)
	case *parse.DotNode:
		// The whole data, .remoteRef included.
		return true
	case *parse.FieldNode:
		return identReadsNamespace(n.Ident)
	case *parse.VariableNode:
		// $ alone is the whole data; $.remoteRef... is a path from it.
		// Other variables were assigned from a pipeline checked where it
		// was declared; a field path from them is checked here.
		if n.Ident[0] == "$" && len(n.Ident) == 1 {
			return true
		}
		return identReadsNamespace(n.Ident[1:])
	case *parse.ChainNode:
		return nodeReadsNamespace(n.Node) || identReadsNamespace(n.Field)
	}
	// Text, comments, constants (strings, numbers, bools, nil), identifiers
	// of functions, break and continue carry no data.
	return false
}

func branchReadsNamespace(b *parse.BranchNode) bool {
	return nodeReadsNamespace(b.Pipe) || nodeReadsNamespace(b.List) || nodeReadsNamespace(b.ElseList)
}

// identReadsNamespace reports whether a field path may reach the namespace:
// it names "namespace", or it ends at remoteRef (the map that holds it).
func identReadsNamespace(ident []string) bool {
	for _, f := range ident {
		if f == "namespace" {
			return true
		}
	}
	return len(ident) > 0 && ident[len(ident)-1] == "remoteRef"
}
