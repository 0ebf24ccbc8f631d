"""Networks from a RunConfig: trained from scratch, pretrained backbones, and their layer descriptions."""
