module github.com/kairoshq/kairos

go 1.26.8

require gonum.org/v1/gonum v0.17.0

require (
	github.com/klauspost/compress v1.20.3 // indirect
	go.uber.org/goleak v1.3.0 // indirect
)
