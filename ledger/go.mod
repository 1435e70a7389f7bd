module github.com/spendledger/spendledger/ledger

go 1.26.8

require github.com/nats-io/nats.go v1.55.0

require (
	github.com/klauspost/compress v1.20.1 // indirect
	github.com/nats-io/nkeys v0.4.16 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	golang.org/x/crypto v0.57.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
)

require (
	github.com/spendledger/spendledger/gen v0.0.0
	google.golang.org/protobuf v1.36.12
)

replace github.com/spendledger/spendledger/gen => ../gen
