//go:build !amd64

package model
