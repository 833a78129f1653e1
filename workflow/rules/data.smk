# Datasets: one rule per name of lejepa.data.DATASETS, `prepare_<name>`, writes
# <data.root>/<name>/{<split>.npz, meta.json} from the source chosen in config/data.yaml
# (mirror or download; data.imagenet_dir and data.galaxy10_h5 whenever set), verified by
# sha256. A rule's params hold only the settings its dataset uses (prepare_settings), so
# editing one source reruns only the datasets it serves. A failed preparation leaves no
# output, so nothing downstream runs. Rules that read a dataset take dataset_meta(name) as input.


for dataset, spec in DATASETS.items():

    rule:
        name:
            f"prepare_{dataset}"
        output:
            meta=dataset_meta(dataset),
            splits=[f"{dataset_dir(dataset)}/{split}.npz" for split in spec.splits],
        log:
            f"logs/prepare/{dataset}.log",
        localrule: True  # downloads: compute nodes are often offline
        conda:
            "../envs/data.yaml"
        threads: config["resources"]["data"]["threads"]
        resources:
            mem_mb=config["resources"]["data"]["mem_mb"],
            runtime=config["resources"]["data"]["runtime"],
        params:
            dataset=dataset,
            settings=prepare_settings(dataset, config["data"]),
        script:
            "../scripts/prepare_dataset.py"


rule prepare_mirrored:
    """Every dataset the offline mirror can serve (with data.source: auto or mirror)."""
    input:
        [dataset_meta(name) for name, spec in DATASETS.items() if spec.mirror],
