-- AlterEnum: image classification datasets and models (issue 15)
ALTER TYPE "Task" ADD VALUE 'image-classification';
