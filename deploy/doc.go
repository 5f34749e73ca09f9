// Package deploy holds no code: it is where the deployment and observability files live
// (ec2/, prometheus/, alertmanager/, grafana/, policy-ci/, shop/), and its tests check them and
// .github/workflows with the tools that consume them (docs/observability.md, docs/pipeline.md).
package deploy
