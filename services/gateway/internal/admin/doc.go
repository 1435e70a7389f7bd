// Package admin is the gateway's LiteLLM-compatible admin API: keys
// (/key/generate, /key/info, /key/update, /key/delete), teams, users,
// customers and organizations (*/new, */info), runtime deployments
// (/model/new, /model/update), spend logs (/spend/logs) and provider budgets
// (/provider/budgets), in LiteLLM's paths and JSON shapes. README.md in this
// directory lists every field supported and how it maps.
//
// It owns no state: keys, principals and budgets live in the budget service
// (Connect), spend in the ledger (Connect: every spend figure is a sum of
// ledger entries), runtime deployments in the gateway's server.Live.
//
// Money never passes through float64: request amounts are parsed from the
// JSON number's text (money.ParseLimit, exact to the nano-dollar), and
// amounts are written as exact decimal JSON numbers from nano-USD
// (money.Nanos.String(): 123456 nanos is 0.000123456).
//
// Authorization: the master key (general_settings.master_key) may call every
// path. A virtual key may read its own /key/info and nothing else (403 on
// every other admin path).
//
// The package also syncs the config file's budgets (provider, tag,
// deployment) to the budget service at start (Syncer).
package admin
