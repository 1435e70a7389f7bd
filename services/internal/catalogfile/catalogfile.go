// Package catalogfile loads the price catalog every service prices with: the
// built-in catalog, with an operator's file (LiteLLM's JSON shape) replacing
// or extending it entry by entry. Pricing, admission estimates and the
// gateway's cost header all load it here, so one -catalog-file means the same
// prices everywhere.
package catalogfile

import (
	"fmt"
	"os"

	"github.com/spendledger/spendledger/ledger/pricing"
	"github.com/spendledger/spendledger/services/internal/envflag"
)

// Flag defines -catalog-file (PRICING_CATALOG_FILE).
func Flag(fs *envflag.Set) *string {
	return fs.String("catalog-file", "PRICING_CATALOG_FILE", "",
		"price map in LiteLLM's JSON shape whose entries replace or extend the built-in catalog")
}

// Load returns the built-in catalog, merged with the file at path when given.
func Load(path string) (*pricing.Catalog, error) {
	builtin, err := pricing.Builtin()
	if err != nil {
		return nil, fmt.Errorf("built-in catalog: %w", err)
	}
	if path == "" {
		return builtin, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("catalog file: %w", err)
	}
	override, err := pricing.ParseCatalog(b)
	if err != nil {
		return nil, fmt.Errorf("catalog file %s: %w", path, err)
	}
	return builtin.Merge(override), nil
}
