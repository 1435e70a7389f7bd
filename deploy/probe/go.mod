module github.com/spendledger/spendledger/deploy/probe

go 1.26.8
