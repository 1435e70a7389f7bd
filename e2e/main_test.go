package e2e

import (
	"testing"

	"github.com/spendledger/spendledger/e2e/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }
