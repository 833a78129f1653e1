# Names and helpers of the rules of the backbones issue (segmentation.smk: figures 13, 14 and 1
# bottom left; backbones.smk: figure 9); included by tables.smk, whose catch-all rules must
# leave these figures be.

# Figures 14, 13 and 1 (bottom left): workflow/rules/segmentation.smk

SEGMENTATION_FIGURES = ["fig14", "fig13", "fig1_bottom_left"]
# figures/<name>.pdf built by workflow/rules/segmentation.smk and backbones.smk
BACKBONE_FIGURES = ["fig9", *SEGMENTATION_FIGURES]


def segmentation_settings():
    return config["segmentation"]["scales"][config["scale"]]


def segmentation_inputs(wildcards):
    run = segmentation_settings()["run"]
    dataset = pretrain_settings(run)[0]["dataset"]
    return {"checkpoint": f"runs/{run}/final.pt", **probe_data(dataset, "test")}


def segmentation_provenance():
    run = segmentation_settings()["run"]
    settings = pretrain_settings(run)[0]
    return {
        "run": run,
        "scale": settings["scale"],
        "dataset": settings["dataset"],
        "epochs": settings["epochs"],
    }


# Figure 9: workflow/rules/backbones.smk


def fig9_run_settings():
    """run -> its resolved settings, for every pretrained run of the figure's table."""
    runs = {
        cell["run"]
        for cell in table_cells_here("fig9")
        if cell["run"] and cell["run_kind"] == "pretrained"
    }
    return {run: result_settings(pretrain_settings(run)[0]) for run in sorted(runs)}
