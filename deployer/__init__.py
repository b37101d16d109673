"""deployer: deploy Docker containers described in YAML templates to hosts over SSH,
as named instances whose state the host keeps."""

__version__ = "0.1.0"
