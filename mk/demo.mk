# make demo: the main job on a generated sample, with the local-directory default.

.PHONY: demo
demo: ## generate a realistic sample container in ./demo-store and ingest it (no Azure needed)
	$(CARGO) run --quiet --bin retail-ingest -- demo --store demo-store
