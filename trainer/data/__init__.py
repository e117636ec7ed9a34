"""The data: what a row and a series are, reading and checking them, windows and splits,
prepare.json, the tf.data input pipeline and the built-in synthetic set. Imports only
`trainer.util`."""
