//go:build tools

// Package tools pins the Kubernetes commands the tests run: kube-apiserver and
// kube-controller-manager, built from k8s.io/kubernetes at the version in ../versions.env.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
