package deploy

import (
	"fmt"
	"sort"

	"go.yaml.in/yaml/v3"

	"github.com/spendledger/spendledger/services/gateway/internal/config"
)

// Runtime changes (LiteLLM's /model/new and /model/update) never mutate a
// Set: requests in flight keep the Set they started with, and a change builds
// a new Set that shares every unchanged *Deployment with the old one.

// ConflictError says a deployment with the entry's explicit model_info.id is
// already registered with a different entry.
type ConflictError struct{ ID string }

func (e *ConflictError) Error() string {
	return fmt.Sprintf("deployment %q is already registered with a different entry; change it with /model/update", e.ID)
}

// ByID returns the deployment with id, or nil.
func (s *Set) ByID(id string) *Deployment {
	for _, d := range s.Deployments {
		if d.ID() == id {
			return d
		}
	}
	return nil
}

// Resolve says what registering cd at runtime means: the id it gets, and the
// deployment already registered with that id and the same entry (then
// registering it again changes nothing: LiteLLM's bug 002 was a
// re-registration that wrote synthesized zero prices back). An entry with an
// explicit model_info.id that is taken by a different entry is a
// ConflictError; one without an id gets the next free generated id, as
// identical entries in a config file do.
func (s *Set) Resolve(cd config.Deployment) (id string, existing *Deployment, err error) {
	if id := cd.ModelInfo.ID; id != "" {
		d := s.ByID(id)
		switch {
		case d == nil:
			return id, nil, nil
		case SameEntry(d.Entry, cd):
			return id, d, nil
		}
		return "", nil, &ConflictError{ID: id}
	}
	for id := range candidateIDs(cd) {
		d := s.ByID(id)
		if d == nil {
			return id, nil, nil
		}
		if SameEntry(d.Entry, cd) {
			return id, d, nil
		}
	}
	panic("unreachable: candidateIDs is infinite")
}

// With returns a copy of s with d added, or replacing the deployment with
// the same id (d.R.Index must then be that deployment's index; for a new one,
// len(s.Deployments)). Groups are rebuilt in index order; aliases stay as
// configured and apply while their group has deployments.
func (s *Set) With(d *Deployment) *Set {
	n := &Set{Groups: map[string][]*Deployment{}, Aliases: s.Aliases}
	n.Deployments = append(make([]*Deployment, 0, len(s.Deployments)+1), s.Deployments...)
	if d.R.Index < len(n.Deployments) {
		n.Deployments[d.R.Index] = d
	} else {
		n.Deployments = append(n.Deployments, d)
	}
	for _, x := range n.Deployments {
		n.Groups[x.Group()] = append(n.Groups[x.Group()], x)
	}
	n.sortGroups()
	aliases := make([]string, 0, len(s.Aliases))
	for alias := range s.Aliases {
		// A runtime group of the alias's name wins, as in the config.
		if _, real := n.Groups[alias]; !real {
			aliases = append(aliases, alias)
		}
	}
	sort.Strings(aliases)
	n.GroupNames = append(n.GroupNames, aliases...)
	return n
}

// SameEntry reports whether two model_list entries say the same thing: the
// same keys with the same values as written, in any key order and style. A
// null or empty value ("", {}, []) is the same as an absent key (all decode
// to "unset").
// Values are compared as text, so 3e-06 and 0.000003 differ: comparing them
// as numbers would need a parse for every field, and the only cost of a false
// "different" is an explicit update, never a changed price.
func SameEntry(a, b config.Deployment) bool {
	if a.Source == nil || b.Source == nil {
		return false
	}
	return nodesEqual(a.Source, b.Source)
}

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && (n.Kind == yaml.DocumentNode || n.Kind == yaml.AliasNode) {
		if n.Kind == yaml.AliasNode {
			n = n.Alias
		} else if len(n.Content) > 0 {
			n = n.Content[0]
		} else {
			return nil
		}
	}
	return n
}

// unset reports a value that decodes to nothing: absent, null, "", or an
// empty mapping or list.
func unset(n *yaml.Node) bool {
	n = deref(n)
	switch {
	case n == nil:
		return true
	case n.Kind == yaml.ScalarNode:
		return n.Tag == "!!null" || n.Value == ""
	case n.Kind == yaml.MappingNode:
		return len(mapping(n)) == 0
	case n.Kind == yaml.SequenceNode:
		return len(n.Content) == 0
	}
	return false
}

func nodesEqual(a, b *yaml.Node) bool {
	a, b = deref(a), deref(b)
	if unset(a) || unset(b) {
		return unset(a) && unset(b)
	}
	if a.Kind != b.Kind {
		return false
	}
	switch a.Kind {
	case yaml.ScalarNode:
		return a.Value == b.Value
	case yaml.SequenceNode:
		if len(a.Content) != len(b.Content) {
			return false
		}
		for i := range a.Content {
			if !nodesEqual(a.Content[i], b.Content[i]) {
				return false
			}
		}
		return true
	case yaml.MappingNode:
		am, bm := mapping(a), mapping(b)
		if len(am) != len(bm) {
			return false
		}
		for k, v := range am {
			w, ok := bm[k]
			if !ok || !nodesEqual(v, w) {
				return false
			}
		}
		return true
	}
	return false
}

// mapping returns a mapping node's set values by key.
func mapping(n *yaml.Node) map[string]*yaml.Node {
	m := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if !unset(n.Content[i+1]) {
			m[n.Content[i].Value] = n.Content[i+1]
		}
	}
	return m
}
