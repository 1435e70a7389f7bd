package scope

import (
	"fmt"
	"strconv"
)

// Kind is what a budget is attached to. The zero Kind is invalid, so a
// forgotten field cannot silently mean "key".
type Kind uint8

// The order is the order Identity.Scopes returns scopes in.
const (
	KindKey          Kind = iota + 1 // virtual key
	KindTeam                         // team of the key
	KindUser                         // internal user owning the key
	KindOrg                          // organization
	KindEndUser                      // the operator's customer (LiteLLM "end user", "customer")
	KindTag                          // request or key tag
	KindProvider                     // provider of the chosen deployment, e.g. "vertex_ai"
	KindDeployment                   // one deployment (model_list entry)
	KindKeyModel                     // key × model group: LiteLLM's model_max_budget
	KindEndUserModel                 // end user × model group
)

// kindNames are the external spellings, used in config, APIs and counter
// keys; changing one orphans every live counter of that kind.
var kindNames = [...]string{
	KindKey:          "key",
	KindTeam:         "team",
	KindUser:         "user",
	KindOrg:          "org",
	KindEndUser:      "end_user",
	KindTag:          "tag",
	KindProvider:     "provider",
	KindDeployment:   "deployment",
	KindKeyModel:     "key_model",
	KindEndUserModel: "end_user_model",
}

// Kinds returns every valid Kind in order.
func Kinds() []Kind {
	ks := make([]Kind, 0, len(kindNames)-1)
	for k := KindKey; int(k) < len(kindNames); k++ {
		ks = append(ks, k)
	}
	return ks
}

// Valid reports whether k is one of the declared kinds.
func (k Kind) Valid() bool { return k >= KindKey && int(k) < len(kindNames) }

// PerModel reports whether scopes of this kind are further split by model
// group, and so require Scope.ModelGroup.
func (k Kind) PerModel() bool { return k == KindKeyModel || k == KindEndUserModel }

// String returns the external name, or "Kind(N)" for an invalid kind.
func (k Kind) String() string {
	if k.Valid() {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// ParseKind is the inverse of String for valid kinds. It is exact: no case
// folding or aliases, so one kind has one spelling everywhere.
func ParseKind(s string) (Kind, error) {
	for k := KindKey; int(k) < len(kindNames); k++ {
		if kindNames[k] == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("scope: unknown kind %q (want one of key, team, user, org, end_user, tag, provider, deployment, key_model, end_user_model)", s)
}

// MarshalText implements encoding.TextMarshaler; invalid kinds fail rather
// than write "Kind(N)" that could never be read back.
func (k Kind) MarshalText() ([]byte, error) {
	if !k.Valid() {
		return nil, fmt.Errorf("scope: cannot marshal invalid %v", k)
	}
	return []byte(k.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseKind.
func (k *Kind) UnmarshalText(b []byte) error {
	v, err := ParseKind(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}
