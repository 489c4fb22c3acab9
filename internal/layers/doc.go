// Package layers holds the test that keeps godist's packages in their layers (see
// README.md, "Layout"): no package imports one above it, and the worker side does not
// import the master's transports.
package layers
