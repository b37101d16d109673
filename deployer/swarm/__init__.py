"""The Swarm engine (``deployer.engine: swarm``): a template's services as Swarm services,
through a manager. manager.py is the engine, service.py the service commands a spec
becomes, facts.py what a deploy reads, releases.py the releases the cluster keeps,
sh/swarm.sh the shell they run as."""
