package pricing

import (
	_ "embed"
	"sync"
)

// builtinJSON is LiteLLM's price map, copied into catalog/ with its license notice.
//
//go:embed catalog/model_prices_and_context_window.json
var builtinJSON []byte

var builtin = sync.OnceValues(func() (*Catalog, error) { return ParseCatalog(builtinJSON) })

// Builtin returns the catalog embedded in the binary, parsed once. The returned catalog is shared
// and immutable; its Version is the SHA-256 of the embedded file.
func Builtin() (*Catalog, error) { return builtin() }
