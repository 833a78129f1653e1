# Figures 14, 13 and 1 (bottom left): a pretrained ViT's last-layer patch features (PCA as
# RGB) and [CLS]-attention masks, beside its random-init twin (config/segmentation.yaml).
#
#   snakemake --cores all figures/fig14.pdf                    # scale of config/config.yaml
#   snakemake --cores all figures/fig13.pdf --config scale=tiny
#
# figures/data/fig14.csv: per image and model, the variance the 3 components explain;
# figures/data/fig13.csv: per frame and model, the fraction of patches the mask keeps, its
# IoU with frame 0's mask and the attention's entropy. Figure 13's frames are photometric
# augmentations of one image (no video), and the figure says so.


rule segmentation_figures:
    input:
        unpack(segmentation_inputs),
    output:
        fig14=report(
            "figures/fig14.pdf",
            caption="../report/segmentation.rst",
            category="ViT segmentation",
        ),
        fig13=report(
            "figures/fig13.pdf",
            caption="../report/segmentation.rst",
            category="ViT segmentation",
        ),
        fig1_bottom_left="figures/fig1_bottom_left.pdf",
        pngs=expand("figures/{figure}.png", figure=SEGMENTATION_FIGURES),
        fig14_csv="figures/data/fig14.csv",
        fig13_csv="figures/data/fig13.csv",
    log:
        "logs/figures/segmentation.log",
    conda:
        "../envs/tables.yaml"  # torch, timm and matplotlib
    threads: config["resources"]["probe"]["threads"]
    resources:
        mem_mb=config["resources"]["probe"]["mem_mb"],
        runtime=config["resources"]["probe"]["runtime"],
        gpu=0,
    params:
        settings=lambda wc: segmentation_settings(),
        provenance=lambda wc: segmentation_provenance(),
    script:
        "../scripts/segmentation_figures.py"
