"""Reference GAN training (issue 6): DCGAN/WGAN models, losses and data, writing checkpoints for
ganeval to score."""
