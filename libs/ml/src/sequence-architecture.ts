/** The former default text model (Embedding → average pooling → softmax) as a custom architecture: versions trained before hashed n-grams. */
export function sequenceTextArchitecture(
  classes: number,
  embeddingDim = 4,
  vocabulary = 20_000,
  length: number | null = null,
): Record<string, unknown> {
  return {
    class_name: 'Sequential',
    config: {
      name: 'text_classifier',
      layers: [
        {
          class_name: 'Embedding',
          config: { name: 'embedding', input_dim: vocabulary, output_dim: embeddingDim, batch_input_shape: [null, length] },
        },
        { class_name: 'GlobalAveragePooling1D', config: { name: 'pooling' } },
        { class_name: 'Dense', config: { name: 'output', units: classes, activation: 'softmax' } },
      ],
    },
  };
}
