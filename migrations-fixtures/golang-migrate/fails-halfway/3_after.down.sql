DROP TABLE after_broken;
