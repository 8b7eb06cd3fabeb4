// Package abtest is the statistics of Kairos A/B experiments.
package abtest
